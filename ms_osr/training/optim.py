"""AdamW/Adam as a graph-compiled cell (PyTorch semantics) and per-step learning-rate schedules.

MindSpore's ``nn.AdamWeightDecay`` has no bias correction, so it does not follow the papers'
``torch.optim.AdamW``; :class:`AdamW` below does: ``m/(1-b1^t)``, ``sqrt(v/(1-b2^t)) + eps``,
decoupled decay ``p *= 1 - lr*wd`` (or L2 decay added to the gradient for ``decoupled=False``,
i.e. ``torch.optim.Adam``).  The learning rate and bias corrections are inputs of the compiled
step, computed in Python from the step counter, so the schedule is exact and resumable.

For float32 parameters the update is one fused ``AdamWeightDecay`` kernel per parameter instead of about twelve
elementwise ops: its update ``p -= lr' (m / (sqrt(v) + eps') + wd' p)`` has no bias correction, and equals torch's
with ``lr' = lr sqrt(bc2) / bc1``, ``eps' = eps sqrt(bc2)``, ``wd' = wd bc1 / sqrt(bc2)`` (so ``lr' wd' = lr wd``).
A small CNN has a few hundred parameters, and at batch 1 the launch cost of those small ops was about a quarter of
GridDehazeNet's training step (benchmarks/results.md).
"""
from __future__ import annotations

import math
import re
from typing import Dict, List, Optional

import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops
import mindspore as ms

_adam_update = ops.MultitypeFuncGraph("adam_update")


@_adam_update.register("Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Bool",
                       "Tensor", "Tensor", "Tensor", "Tensor", "Tensor")
def _update_one(lr, beta1, beta2, eps, wd, bc1, bc2, decoupled, mult, param, m, v, grad):
    lr = lr * mult
    grad = ops.cast(grad, ms.float32)
    p32 = ops.cast(param, ms.float32)
    if not decoupled:
        grad = grad + wd * p32
    m_new = beta1 * m + (1.0 - beta1) * grad
    v_new = beta2 * v + (1.0 - beta2) * grad * grad
    denom = ops.sqrt(v_new / bc2) + eps
    if decoupled:
        p32 = p32 * (1.0 - lr * wd)
    p_new = p32 - lr * (m_new / bc1) / denom
    ops.assign(m, m_new)
    ops.assign(v, v_new)
    ops.assign(param, ops.cast(p_new, param.dtype))
    return True


_fused_update = ops.MultitypeFuncGraph("fused_adam_update")


@_fused_update.register("Function", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Bool", "Tensor",
                        "Tensor", "Tensor", "Tensor", "Tensor")
def _fused_one(kernel, step_size, beta1, beta2, eps_hat, wd_hat, wd, decoupled, mult, param, m, v, grad):
    if not decoupled:  # torch Adam: L2 decay is part of the gradient, the kernel then decays nothing
        grad = grad + wd * param
    return kernel(param, m, v, step_size * mult, beta1, beta2, eps_hat, wd_hat, grad)


def lr_multipliers(params, lr_mult: Optional[Dict[str, float]]) -> List[float]:
    """Per-parameter factors of the learning rate: the first regular expression of ``lr_mult`` found in a
    parameter's name gives its factor, others get 1 (e.g. ``{"extracts": 10}``: Res-HAIR's Hyper Selecting
    Nets learn 10x faster).  A pattern that matches no parameter is an error (a typo would do nothing)."""
    params = list(params)
    patterns = [(re.compile(k), float(v)) for k, v in (lr_mult or {}).items()]
    unused = [p.pattern for p, _ in patterns if not any(p.search(q.name) for q in params)]
    if unused:
        raise ValueError(f"train.optimizer.lr_mult: no trainable parameter matches {', '.join(map(repr, unused))}")
    return [next((f for p, f in patterns if p.search(q.name)), 1.0) for q in params]


class AdamW(nn.Cell):
    """Adam with decoupled weight decay (``decoupled=True``, torch AdamW) or L2 decay (torch Adam).
    ``lr_mult`` scales the learning rate per parameter (:func:`lr_multipliers`)."""

    def __init__(self, params, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01,
                 decoupled: bool = True, lr_mult: Optional[Dict[str, float]] = None):
        super().__init__(auto_prefix=False)
        self.params = ParameterTuple(params)
        self.mults = tuple(Tensor(f, ms.float32) for f in lr_multipliers(self.params, lr_mult))
        self.exp_avg = self.params.clone(prefix="optimizer.exp_avg", init="zeros")
        self.exp_avg_sq = self.params.clone(prefix="optimizer.exp_avg_sq", init="zeros")
        self.beta1 = Tensor(float(betas[0]), ms.float32)
        self.beta2 = Tensor(float(betas[1]), ms.float32)
        self.eps = Tensor(float(eps), ms.float32)
        self.wd = Tensor(float(weight_decay), ms.float32)
        self.decoupled = bool(decoupled)
        self.hyper_map = ops.HyperMap()
        # the fused kernel updates float32 weights only; AMP O2/O3 (float16 weights) keeps the elementwise update
        self.fused = all(p.dtype == ms.float32 for p in self.params)
        self.kernel = ops.AdamWeightDecay()
        self.zero = Tensor(0.0, ms.float32)

    def construct(self, grads, lr, bc1, bc2):
        if self.fused:
            root_bc2 = ops.sqrt(bc2)
            wd_hat = self.wd * bc1 / root_bc2 if self.decoupled else self.zero
            return self.hyper_map(ops.partial(_fused_update, self.kernel, lr * root_bc2 / bc1, self.beta1,
                                              self.beta2, self.eps * root_bc2, wd_hat, self.wd, self.decoupled),
                                  self.mults, self.params, self.exp_avg, self.exp_avg_sq, grads)
        return self.hyper_map(ops.partial(_adam_update, lr, self.beta1, self.beta2, self.eps, self.wd, bc1, bc2,
                                          self.decoupled), self.mults, self.params, self.exp_avg, self.exp_avg_sq,
                              grads)

    def state_arrays(self) -> Dict[str, np.ndarray]:
        """Moments as ``{'optimizer.exp_avg.<param>': array, ...}`` for the checkpoint."""
        out = {}
        for p in list(self.exp_avg) + list(self.exp_avg_sq):
            out[p.name] = p.asnumpy()
        return out

    def load_state_arrays(self, arrays: Dict[str, np.ndarray], source: str = "checkpoint") -> None:
        missing = [p.name for p in list(self.exp_avg) + list(self.exp_avg_sq) if p.name not in arrays]
        if missing:
            raise KeyError(f"{source}: optimizer state missing {len(missing)} tensors, e.g. {missing[0]}")
        for p in list(self.exp_avg) + list(self.exp_avg_sq):
            p.set_data(Tensor(arrays[p.name], p.dtype))


def bias_corrections(step: int, betas) -> tuple:
    """(1 - b1^t, 1 - b2^t) for the 1-based update count ``t = step + 1``."""
    t = step + 1
    return 1.0 - float(betas[0]) ** t, 1.0 - float(betas[1]) ** t


class LRSchedule:
    """Learning rate as a function of the 0-based optimizer step.

    ``cosine``: linear warm-up from ``base/warmup`` to ``base`` over ``warmup_steps``, an optional flat
    ``hold_steps`` at ``base``, then cosine decay to ``min_lr`` at ``total_steps - 1``; clamped
    afterwards, so it never rises again (unlike the HAIR repo's 300-epoch default).
    ``step``: ``base * gamma ** (step // step_size)`` after warm-up.  ``constant``: ``base``.
    """

    def __init__(self, base_lr: float, total_steps: int, kind: str = "cosine", warmup_steps: int = 0,
                 min_lr: float = 0.0, hold_steps: int = 0, step_size: int = 0, gamma: float = 0.5,
                 warmup_start: Optional[float] = None):
        if kind not in ("cosine", "step", "constant"):
            raise ValueError(f"unknown scheduler '{kind}': choose cosine, step or constant")
        self.base, self.total, self.kind = float(base_lr), max(1, int(total_steps)), kind
        self.warmup, self.min_lr, self.hold = int(warmup_steps), float(min_lr), int(hold_steps)
        self.step_size, self.gamma = int(step_size), float(gamma)
        self.warmup_start = warmup_start

    def __call__(self, step: int) -> float:
        s = min(max(int(step), 0), self.total - 1)
        if self.warmup > 0 and s < self.warmup:
            start = self.base / self.warmup if self.warmup_start is None else float(self.warmup_start)
            return start + (self.base - start) * s / self.warmup
        if self.kind == "constant":
            return self.base
        if self.kind == "step":
            if self.step_size <= 0:
                return self.base
            return self.base * self.gamma ** ((s - self.warmup) // self.step_size)
        decay_start = self.warmup + self.hold
        if s < decay_start:
            return self.base
        span = max(1, self.total - 1 - decay_start)
        frac = min(1.0, (s - decay_start) / span)
        return self.min_lr + 0.5 * (self.base - self.min_lr) * (1.0 + math.cos(math.pi * frac))


def build_schedule(cfg: Dict, base_lr: float, total_steps: int, steps_per_epoch: int) -> LRSchedule:
    """From ``train.scheduler``; ``*_epochs`` keys are converted to steps."""
    cfg = dict(cfg or {"type": "constant"})

    def steps(key: str) -> int:
        if cfg.get(f"{key}_steps") is not None:
            return int(cfg[f"{key}_steps"])
        if cfg.get(f"{key}_epochs") is not None:
            return int(round(float(cfg[f"{key}_epochs"]) * steps_per_epoch))
        return 0

    return LRSchedule(base_lr, total_steps, cfg.get("type", "cosine"), steps("warmup"), float(cfg.get("min_lr", 0.0)),
                      steps("hold"), steps("step"), float(cfg.get("gamma", 0.5)), cfg.get("warmup_start"))


class HostAdamW:
    """The same AdamW update done in NumPy on the host, for ``train.update: host``.

    Work-around for graphs whose fused in-graph update runs into a MindSpore CPU runtime stall
    (seen with Res-HAIR in 2.10: the 6th execution of the fused step never finishes); the forward
    and backward stay one compiled graph.  Moments are named like :class:`AdamW`'s."""

    def __init__(self, params, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01,
                 decoupled: bool = True, lr_mult: Optional[Dict[str, float]] = None):
        self.params = list(params)
        self.mults = lr_multipliers(self.params, lr_mult)
        self.betas, self.eps, self.wd, self.decoupled = tuple(betas), float(eps), float(weight_decay), decoupled
        self.exp_avg = {p.name: np.zeros(p.shape, np.float32) for p in self.params}
        self.exp_avg_sq = {p.name: np.zeros(p.shape, np.float32) for p in self.params}
        self.values = {p.name: p.asnumpy().astype(np.float32) for p in self.params}

    def update(self, grads, lr: float, bc1: float, bc2: float) -> None:
        b1, b2 = self.betas
        for p, g, mult in zip(self.params, grads, self.mults):
            p_lr = lr * mult
            g = g.asnumpy().astype(np.float32) if hasattr(g, "asnumpy") else np.asarray(g, np.float32)
            w = self.values[p.name]
            if not self.decoupled and self.wd:
                g = g + self.wd * w
            m, v = self.exp_avg[p.name], self.exp_avg_sq[p.name]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            if self.decoupled and self.wd:
                w *= 1.0 - p_lr * self.wd
            w -= (p_lr / bc1) * m / (np.sqrt(v / bc2) + self.eps)
            p.set_data(Tensor(w, p.dtype))

    def state_arrays(self) -> Dict[str, np.ndarray]:
        out = {f"optimizer.exp_avg.{n}": a.copy() for n, a in self.exp_avg.items()}
        out.update({f"optimizer.exp_avg_sq.{n}": a.copy() for n, a in self.exp_avg_sq.items()})
        return out

    def load_state_arrays(self, arrays: Dict[str, np.ndarray], source: str = "checkpoint") -> None:
        for p in self.params:
            for key, store in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
                full = f"optimizer.{key}.{p.name}"
                if full not in arrays:
                    raise KeyError(f"{source}: optimizer state missing {full}")
                store[p.name] = np.asarray(arrays[full], np.float32).copy()
        self.sync_from_params()

    def sync_from_params(self) -> None:
        self.values = {p.name: p.asnumpy().astype(np.float32) for p in self.params}
