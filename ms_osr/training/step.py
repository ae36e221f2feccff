"""The compiled training step: forward, loss, ``value_and_grad``, gradient all-reduce, clipping,
AdamW update and EMA, all in one graph (``nn.Cell`` run in GRAPH_MODE)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import mindspore as ms
from mindspore import ParameterTuple, Tensor, nn, ops

from .. import losses as L
from .amp import LossScaler

_ema_update = ops.MultitypeFuncGraph("ema_update")
# loss options that read the batch's one-hot degradation labels through a method of the network itself
LABEL_LOSSES = ("giv_separation", "gate_supervision")


@_ema_update.register("Tensor", "Tensor", "Tensor")
def _ema_one(decay, ema, param):
    ops.assign(ema, decay * ema + (1.0 - decay) * ops.cast(param, ms.float32))
    return True


class EMA(nn.Cell):
    """Exponential moving average of the weights, stored as ``ema.<param name>``."""

    def __init__(self, params, decay: float):
        super().__init__(auto_prefix=False)
        self.params = ParameterTuple(params)
        self.shadow = self.params.clone(prefix="ema", init="same")
        self.decay = Tensor(float(decay), ms.float32)
        self.hyper_map = ops.HyperMap()

    def construct(self):
        return self.hyper_map(ops.partial(_ema_update, self.decay), self.shadow, self.params)

    def arrays(self) -> Dict[str, np.ndarray]:
        return {p.name: p.asnumpy() for p in self.shadow}

    def load_arrays(self, arrays: Dict[str, np.ndarray]) -> None:
        for p in self.shadow:
            p.set_data(Tensor(arrays[p.name], p.dtype))


class LossNet(nn.Cell):
    """``loss(net(x), y)``; for ``ptg_joint`` the net's ``forward_train(x) -> (base, refined)``.

    ``giv_separation: w`` (Res-HAIR, our option) adds ``w *`` :func:`~ms_osr.losses.giv_separation_loss` of
    the net's GIV against the batch's one-hot degradation labels, the third input of ``construct``.
    ``skip_supervision: w`` (Res-HAIR with ``affine_skip``, ``dark_channel_skip`` or ``scattering_skip``, our
    option) adds ``w *`` the same pixel loss between the skip image and the target, so the skip's transform
    itself must undo what it can."""

    def __init__(self, net: nn.Cell, loss_cfg: Dict, classes: Optional[Sequence[str]] = None):
        super().__init__(auto_prefix=False)
        self.net = net
        loss_cfg = dict(loss_cfg)
        self.separation = float(loss_cfg.pop("giv_separation", None) or 0.0)
        self.separate = self.separation > 0
        self.gate_weight = float(loss_cfg.pop("gate_supervision", None) or 0.0)
        self.gated = self.gate_weight > 0
        self.skip_weight = float(loss_cfg.pop("skip_supervision", None) or 0.0)
        self.skip_supervised = self.skip_weight > 0
        kind = loss_cfg.get("type", "l1")
        has_skip = getattr(net, "has_skip_transform", False)
        if self.skip_supervised and (kind == "ptg_joint" or self.separate or self.gated or not has_skip):
            raise ValueError(f"loss option skip_supervision needs a Res-HAIR model with affine_skip, "
                             f"dark_channel_skip or scattering_skip, a pixel loss and no other loss option; got "
                             f"{type(net).__name__} with loss '{kind}'")
        if self.separate and (kind == "ptg_joint" or not hasattr(net, "restore_with_giv")):
            raise ValueError(f"loss option giv_separation needs a Res-HAIR model (restore_with_giv) and a pixel "
                             f"loss; got {type(net).__name__} with loss '{kind}'")
        if self.gated:
            if kind == "ptg_joint" or self.separate or not getattr(net, "use_gate", False):
                raise ValueError(f"loss option gate_supervision needs a model with harm_gate: true (osr or "
                                 f"osr_resnet) and a pixel loss; got {type(net).__name__} with loss '{kind}'")
            if not classes or "identity" not in classes:
                raise ValueError(f"loss option gate_supervision needs clean pairs (identity) among "
                                 f"data.train.degradations; the degradation types are {list(classes or [])}")
            self.clean_index = list(classes).index("identity")
        self.kind = kind
        self.joint = kind == "ptg_joint"
        if self.joint:
            if not hasattr(net, "forward_train"):
                raise ValueError(f"loss type ptg_joint needs a model with forward_train(x) -> (base, refined); "
                                 f"{type(net).__name__} has none")
            from .. import losses as losses_mod

            fn = getattr(losses_mod, "ptg_joint_loss", None)
            if fn is None:
                raise ValueError("ms_osr.losses.ptg_joint_loss is not available")
            kwargs = {k: v for k, v in loss_cfg.items() if k != "type"}
            self.loss_fn, self.extra = fn, _positional(fn, kwargs, 3)
        else:
            if kind not in L.PIXEL_LOSSES:
                raise ValueError(f"unknown loss '{kind}': choose one of {', '.join(L.PIXEL_LOSSES)} or ptg_joint")
            kwargs = {k: v for k, v in loss_cfg.items() if k not in ("type",)}
            self.loss_fn = L.PIXEL_LOSSES[kind]
            self.extra = _positional(self.loss_fn, kwargs, 2)

    def construct(self, x, y, *labels):
        if self.joint:
            base, refined = self.net.forward_train(x)
            return self.loss_fn(ops.cast(base, ms.float32), ops.cast(refined, ms.float32), y, *self.extra)
        if self.gated:
            out, logit = self.net.restore_with_gate(x)
            pixel = self.loss_fn(ops.cast(out, ms.float32), y, *self.extra)
            return pixel + self.gate_weight * L.gate_supervision_loss(ops.cast(logit, ms.float32), labels[0],
                                                                      self.clean_index)
        if self.skip_supervised:
            out, _, skip = self.net.restore_parts(x)
            pixel = self.loss_fn(ops.cast(out, ms.float32), y, *self.extra)
            return pixel + self.skip_weight * self.loss_fn(ops.cast(skip, ms.float32), y, *self.extra)
        if self.separate:
            out, giv = self.net.restore_with_giv(x)
            pixel = self.loss_fn(ops.cast(out, ms.float32), y, *self.extra)
            return pixel + self.separation * L.giv_separation_loss(ops.cast(giv, ms.float32), labels[0])
        out = self.net(x)
        return self.loss_fn(ops.cast(out, ms.float32), y, *self.extra)


def _positional(fn, kwargs: Dict, n_tensors: int) -> tuple:
    """Config keyword arguments of ``fn`` as a constant positional tuple (functools.partial and
    ``**kwargs`` make GRAPH_MODE fall back to untyped Python execution)."""
    import inspect

    params = list(inspect.signature(fn).parameters.values())[n_tensors:]
    names = [p.name for p in params]
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise ValueError(f"loss '{fn.__name__}' has no option(s) {', '.join(unknown)}; it takes {', '.join(names)}")
    return tuple(kwargs.get(p.name, p.default) for p in params)


class TrainStep(nn.Cell):
    """One optimisation step; ``construct(x, y, lr, bc1, bc2[, labels]) -> loss`` (mean over all ranks).

    The gradient part (loss scale, all-reduce, clipping) is :class:`GradStep`; this cell adds the
    AdamW update and EMA inside the same graph.  With a loss scaler, a step whose gradients overflow
    updates nothing (weights, moments and EMA keep their values)."""

    def __init__(self, loss_net: LossNet, optimizer, clip_norm: Optional[float] = None, ema: Optional[EMA] = None,
                 world: int = 1, scaler: Optional[LossScaler] = None):
        super().__init__(auto_prefix=False)
        self.grad_step = GradStep(loss_net, optimizer.params, clip_norm, world, scaler)
        self.optimizer = optimizer
        self.ema = ema
        self.use_ema = ema is not None
        self.scaled = scaler is not None

    def _update(self, loss, grads, lr, bc1, bc2):
        loss = ops.depend(loss, self.optimizer(grads, lr, bc1, bc2))
        if self.use_ema:
            loss = ops.depend(loss, self.ema())
        return loss

    def construct(self, x, y, lr, bc1, bc2, *labels):
        if self.scaled:
            loss, grads, finite = self.grad_step(x, y, *labels)
            if finite:
                loss = self._update(loss, grads, lr, bc1, bc2)
            return loss
        loss, grads = self.grad_step(x, y, *labels)
        return self._update(loss, grads, lr, bc1, bc2)


class _ScaledLoss(nn.Cell):
    """``loss_net(x, y) * scale``: what is differentiated in fp16 training."""

    def __init__(self, loss_net: nn.Cell, scaler: LossScaler):
        super().__init__(auto_prefix=False)
        self.loss_net = loss_net
        self.scaler = scaler

    def construct(self, x, y, *labels):
        return self.scaler.scale_loss(self.loss_net(x, y, *labels))


class GradStep(nn.Cell):
    """Forward + backward (+ all-reduce, clipping) as one graph returning ``(loss, grads)``, or
    ``(loss, grads, finite)`` with a loss scaler (fp16 training: the loss is scaled before differentiation,
    the gradients are unscaled to float32 and checked); the update is then done by :class:`TrainStep` or
    on the host (``train.update: host``, see :class:`~ms_osr.training.optim.HostAdamW`)."""

    def __init__(self, loss_net: nn.Cell, weights, clip_norm: Optional[float] = None, world: int = 1,
                 scaler: Optional[LossScaler] = None):
        super().__init__(auto_prefix=False)
        self.loss_net = loss_net
        self.weights = ParameterTuple(weights)
        self.scaler = scaler
        self.scaled = scaler is not None
        self.grad_fn = ms.value_and_grad(_ScaledLoss(loss_net, scaler) if self.scaled else loss_net, None,
                                         self.weights)
        self.clip = clip_norm is not None and clip_norm > 0
        self.clip_norm = float(clip_norm or 0.0)
        self.world = int(world)
        self.distributed = self.world > 1
        if self.distributed:
            self.reducer = nn.DistributedGradReducer(self.weights, mean=True, degree=self.world)
            self.allreduce = ops.AllReduce()

    def construct(self, x, y, *labels):
        loss, grads = self.grad_fn(x, y, *labels)
        if self.scaled:
            grads = self.scaler.unscale(grads)
            loss = loss / self.scaler.value
        if self.distributed:
            grads = self.reducer(grads)
            loss = self.allreduce(loss) / self.world
        if self.clip:
            grads = ops.clip_by_global_norm(grads, self.clip_norm)
        if self.scaled:
            # after the all-reduce, so every rank takes the same skip decision
            return loss, grads, self.scaler.update(grads)
        return loss, grads


def make_step_cell(net: nn.Cell, train_cfg: Dict, optimizer, ema: Optional[EMA] = None, world: int = 1,
                   amp: str = "O0", host_update: bool = False, classes: Optional[Sequence[str]] = None):
    """The compiled step for ``net`` as ``train.py`` runs it: AMP level applied, loss scaler for O1-O3,
    :class:`GradStep` (host update) or :class:`TrainStep`; ``classes``: the degradation types of the
    one-hot labels a label loss reads.  Returns ``(step_cell, scaler or None)``."""
    from .amp import apply_amp, build_loss_scaler

    scaler = None
    loss_cfg = train_cfg.get("loss") or {"type": "l1"}
    if amp != "O0":
        amp_net = apply_amp(net, amp)  # O2/O3 cast the cells in place and wrap the output cast
        # forward_train (ptg_joint), restore_with_giv (giv_separation), restore_parts (skip_supervision) and
        # restore_with_gate (gate_supervision)
        # are methods of the network itself, not of the wrapper; LossNet casts their outputs to float32
        own_method = any(loss_cfg.get(k) for k in LABEL_LOSSES + ("skip_supervision",))
        net = net if loss_cfg.get("type") == "ptg_joint" or own_method else amp_net
        scaler = build_loss_scaler(train_cfg.get("loss_scale"))
    loss_net = LossNet(net, loss_cfg, classes)
    clip = train_cfg.get("clip_grad_norm")
    if host_update:
        step = GradStep(loss_net, optimizer.params, clip, world, scaler)
    else:
        step = TrainStep(loss_net, optimizer, clip, ema, world, scaler)
    step.set_train(True)
    return step, scaler
