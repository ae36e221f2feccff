"""Off-the-shelf-feature (OSF) providers for PTG-RM: one interface, three sources.

Interface (what :class:`ms_osr.models.ptg_rm.PTGRMWrapper` relies on): an ``nn.Cell`` with an
int attribute ``out_dim`` whose ``construct(x)`` maps the degraded image batch (B, 3, H, W) in
[0, 1], any H, W, to a float32 (B, out_dim) vector g.  The wrapper freezes the provider and
applies ``stop_gradient`` to g.

* ``clip``: :class:`ms_osr.models.clip.CLIPImageEncoder` (ViT-B/32, 512-d, L2-normalised) -
  the paper's prior.  Needs OpenAI's weights (``ckpt=``); 87.8 M parameters at inference.
* ``restoration_prior``: :class:`RestorationPriorOSF` - a registered restorer loaded from our own
  checkpoint: Res-HAIR's Global Information Vector (``global_vector``), or, for any other model,
  statistics of its restoration (output and correction), optionally projected to ``out_dim``.
  Works offline (the paper's "-r" prior is of this kind).
* ``distilled``: :class:`DistilledOSF` - 4 stride-2 convs + mean/std pooling + MLP that regresses a
  teacher provider's vector from the degraded image, trained with :func:`train_distilled_osf`, so
  inference needs no large encoder (not in the paper; its §3 leaves G-free inference open).
"""
from __future__ import annotations

import time
import warnings
from typing import Dict, Optional

import numpy as np

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter, Tensor

from ..registry import create_model
from .layers import conv2d


def _l2_normalize(v: Tensor) -> Tensor:
    return v / ops.clamp(ops.norm(v, dim=-1, keepdim=True), min=1e-12)


def _mean_std(x: Tensor):
    """Per-channel spatial mean and (population) std of a (B, C, H, W) map, each (B, C)."""
    mean = x.mean(axis=(2, 3), keep_dims=True)
    std = ops.sqrt(((x - mean) ** 2).mean(axis=(2, 3)) + 1e-6)
    return mean.reshape(x.shape[0], x.shape[1]), std


class RestorationPriorOSF(nn.Cell):
    """A frozen registered restorer as prior G.

    ``feature='global_vector'`` uses ``prior.global_vector(x)`` (Res-HAIR's GIV, 2*dim values);
    ``'output_stats'`` works with any restorer: per-channel mean and std of its output y and of its
    correction r = y - x, and the mean |r| (15 values: what it changed and by how much).
    ``'auto'`` picks ``global_vector`` when the model has it.  ``out_dim`` applies a fixed random
    orthonormal projection (seeded, stored as a non-trainable parameter ``proj``); the learned
    adaptation is PTG-RM's own T_m / T_c MLPs.  ``standardize``: a ``.npz`` from
    :func:`calibrate_standardization` (per-dimension mean/std of the native vector on training images,
    frozen as ``std_mean`` / ``std_scale``): z-scores replace the raw values, so that g varies between
    images instead of being dominated by the part shared by all of them.
    """

    def __init__(self, model="res_hair_small", model_kwargs: Optional[dict] = None,
                 ckpt: Optional[str] = None, feature: str = "auto", out_dim: Optional[int] = None,
                 normalize: bool = True, seed: int = 0, standardize: Optional[str] = None):
        super().__init__()
        from ..checkpoint import load_checkpoint

        # a registered name, or an already built (and loaded) restorer cell; weights are loaded before
        # the cell becomes an attribute (that renames its parameters to prior.*)
        prior = create_model(model, **(model_kwargs or {})) if isinstance(model, str) else model
        label = model if isinstance(model, str) else type(model).__name__
        if ckpt:
            load_checkpoint(prior, ckpt)
        elif isinstance(model, str):
            warnings.warn(f"restoration_prior '{label}' has no checkpoint: random weights", stacklevel=2)
        self.prior = prior
        if feature == "auto":
            feature = "global_vector" if hasattr(self.prior, "global_vector") else "output_stats"
        if feature == "global_vector":
            if not hasattr(self.prior, "global_vector"):
                raise ValueError(f"model '{label}' has no global_vector(); use feature='output_stats'")
            native = int(getattr(self.prior, "giv_dim", 0)) or self._probe_dim()
        elif feature == "output_stats":
            native = 15
        else:
            raise ValueError(f"unknown restoration_prior feature '{feature}' (global_vector|output_stats)")
        self.use_giv = feature == "global_vector"
        self.native_dim = native
        self.normalize = normalize
        self.out_dim = int(out_dim or native)
        self.has_proj = self.out_dim != native
        if self.has_proj:  # columns orthonormal when out_dim >= native (angles preserved)
            a = np.random.default_rng(seed).standard_normal((max(native, self.out_dim), min(native, self.out_dim)))
            q = np.linalg.qr(a)[0]
            q = q if native >= self.out_dim else q.T
            self.proj = Parameter(Tensor(q[:native, :self.out_dim].astype(np.float32)), name="proj",
                                  requires_grad=False)
        self.has_std = bool(standardize)
        if self.has_std:
            mean, std = load_standardization(standardize, native)
            self.std_mean = Parameter(Tensor(mean), name="std_mean", requires_grad=False)
            self.std_scale = Parameter(Tensor(std), name="std_scale", requires_grad=False)
        self.prior.set_train(False)

    def _probe_dim(self) -> int:
        """Length of global_vector() for models that do not declare ``giv_dim`` (one small forward)."""
        side = 8 * int(getattr(self.prior, "size_multiple", 1))
        self.prior.set_train(False)
        return int(self.prior.global_vector(Tensor(np.full((1, 3, side, side), 0.5, np.float32))).shape[-1])

    def _output_stats(self, x: Tensor) -> Tensor:
        y = self.prior(x)
        r = y - x
        y_mean, y_std = _mean_std(y)
        r_mean, r_std = _mean_std(r)
        return ops.concat((y_mean, y_std, r_mean, r_std, ops.abs(r).mean(axis=(2, 3))), axis=1)

    def construct(self, x: Tensor) -> Tensor:
        x = ops.clamp(x, 0.0, 1.0)
        v = self.prior.global_vector(x) if self.use_giv else self._output_stats(x)
        # z-scores per native dimension, before the projection (the statistics do not depend on out_dim
        # or seed) and before the L2 normalisation, which is kept: it bounds |g| like CLIP's unit vectors
        # (T_m / T_c have no bias, so |g| scales the modulation) while the direction, no longer dominated
        # by the mean shared by all images, carries the per-image information
        if self.has_std:
            v = (v - self.std_mean) / self.std_scale
        if self.has_proj:
            v = ops.matmul(v, self.proj)
        if self.normalize:
            v = _l2_normalize(v)
        return v


def load_standardization(path: str, dim: int):
    """(mean, std) float32 (dim,) arrays from a :func:`calibrate_standardization` file; one-line errors."""
    try:
        with np.load(path, allow_pickle=False) as data:
            mean, std = (np.asarray(data[k], np.float32) for k in ("mean", "std"))
    except FileNotFoundError:
        raise ValueError(f"OSF standardisation file {path}: not found (write it with tools/ptg_rm_experiment.py "
                         f"--calibrate-osf)") from None
    except KeyError as e:
        raise ValueError(f"OSF standardisation file {path}: missing array {e} (needs 'mean' and 'std')") from None
    except Exception as e:  # noqa: BLE001 (truncated / not an npz)
        raise ValueError(f"OSF standardisation file {path}: unreadable ({type(e).__name__}: {e})") from None
    if mean.shape != (dim,) or std.shape != (dim,):
        raise ValueError(f"OSF standardisation file {path}: mean/std shapes {mean.shape}/{std.shape}, "
                         f"this prior's native vector has {dim} values")
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise ValueError(f"OSF standardisation file {path}: non-finite mean/std or std <= 0")
    return mean, std


def calibrate_standardization(images: np.ndarray, path: str, batch_size: int = 8, **osf_kwargs) -> dict:
    """Per-dimension mean/std of a restoration prior's native vector over ``images`` (N, 3, H, W).

    ``osf_kwargs`` are RestorationPriorOSF's (e.g. a config's ``osf_kwargs``); ``out_dim``,
    ``normalize``, ``standardize`` and ``seed`` are ignored: the statistics are those of the raw
    vector.  Written atomically to ``path`` (``.npz``: mean, std, n); returns them with the raw vectors.
    """
    from ..fileio import atomic_path

    kw = {k: v for k, v in osf_kwargs.items() if k not in ("out_dim", "normalize", "standardize", "seed")}
    raw = osf_vectors(RestorationPriorOSF(normalize=False, **kw), images, batch_size)
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    # a (near-)constant dimension would turn rounding noise into large z-scores
    std = np.maximum(std, 1e-3 * float(std.mean()) + 1e-8)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, mean=mean.astype(np.float32), std=std.astype(np.float32), n=np.int64(len(raw)))
    return {"mean": mean, "std": std, "raw": raw}


class DistilledOSF(nn.Cell):
    """Small head predicting a teacher's OSF from the degraded image (any size).

    clamp -> [conv3x3 stride 2 -> LReLU] x 4 (width, 2w, 4w, 4w) -> per-channel mean and std
    (std keeps noise/blur level) -> Dense(8w, hidden) -> LReLU -> Dense(hidden, out_dim)
    -> L2 normalisation (CLIP vectors are unit length).  Default: 438,208 parameters.
    """

    def __init__(self, out_dim: int = 512, width: int = 32, hidden: int = 256, normalize: bool = True,
                 ckpt: Optional[str] = None):
        super().__init__()
        self.out_dim = int(out_dim)
        self.normalize = normalize
        chans = (3, width, width * 2, width * 4, width * 4)
        self.body = nn.SequentialCell(sum(([conv2d(chans[i], chans[i + 1], 3, stride=2, bias=True),
                                            nn.LeakyReLU(alpha=0.1)] for i in range(4)), []))
        self.fc1 = nn.Dense(width * 8, hidden, has_bias=True)
        self.fc2 = nn.Dense(hidden, out_dim, has_bias=True)
        self.lrelu = nn.LeakyReLU(alpha=0.1)
        if ckpt:
            from ..checkpoint import load_checkpoint

            load_checkpoint(self, ckpt)

    def construct(self, x: Tensor) -> Tensor:
        mean, std = _mean_std(self.body(ops.clamp(x, 0.0, 1.0)))
        v = self.fc2(self.lrelu(self.fc1(ops.concat((mean, std), axis=1))))
        if self.normalize:
            v = _l2_normalize(v)
        return v


def build_osf(kind: str, **kwargs) -> nn.Cell:
    """OSF provider by name: 'clip' | 'restoration_prior' | 'distilled' (kwargs go to its constructor).

    'clip' accepts ``config`` ('clip_vit_b32' default, 'clip_tiny' for tests) and ``ckpt``
    (OpenAI ViT-B-32.pt or a converted .ckpt) plus CLIPImageEncoder arguments.
    """
    if kind == "clip":
        config = kwargs.pop("config", "clip_vit_b32")
        if not kwargs.get("ckpt"):
            warnings.warn("CLIP OSF without ckpt: random weights (pass osf_kwargs={'ckpt': 'ViT-B-32.pt'})",
                          stacklevel=2)
        return create_model(config, **kwargs)
    if kind == "restoration_prior":
        return RestorationPriorOSF(**kwargs)
    if kind == "distilled":
        return DistilledOSF(**kwargs)
    raise ValueError(f"unknown OSF provider '{kind}' (clip | restoration_prior | distilled)")


# ---------------------------------------------------------------------------------------------
# distillation of a provider into DistilledOSF

class _DistillLoss(nn.Cell):
    def __init__(self, head: nn.Cell, loss: str):
        super().__init__()
        self.head = head
        self.cosine = loss == "cosine"

    def construct(self, x: Tensor, target: Tensor) -> Tensor:
        pred = self.head(x)
        if self.cosine:
            return 1.0 - (_l2_normalize(pred) * _l2_normalize(target)).sum(axis=1).mean()
        return ((pred - target) ** 2).sum(axis=1).mean()


def osf_vectors(provider: nn.Cell, images: np.ndarray, batch_size: int = 4) -> np.ndarray:
    """Run ``provider`` over (N, 3, H, W) float32 images in [0, 1]; returns (N, out_dim)."""
    provider.set_train(False)
    out = [provider(Tensor(np.ascontiguousarray(images[i:i + batch_size], np.float32))).asnumpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out, axis=0)


def cosine_stats(pred: np.ndarray, target: np.ndarray) -> Dict[str, float]:
    """Mean/min cosine similarity and mean squared L2 distance between two (N, D) sets of vectors."""
    p = pred / np.maximum(np.linalg.norm(pred, axis=1, keepdims=True), 1e-12)
    t = target / np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-12)
    cos = (p * t).sum(axis=1)
    return {"cos_mean": float(cos.mean()), "cos_min": float(cos.min()),
            "l2": float(((pred - target) ** 2).sum(axis=1).mean())}


def train_distilled_osf(head: DistilledOSF, teacher: nn.Cell, images: np.ndarray, steps: int = 200,
                        batch_size: int = 4, lr: float = 1e-3, loss: str = "cosine",
                        val_images: Optional[np.ndarray] = None, seed: int = 0, log_every: int = 0) -> dict:
    """Fit ``head`` to reproduce ``teacher``'s vectors on ``images`` (N, 3, H, W) in [0, 1].

    Teacher vectors are computed once; training is random mini-batches with Adam on ``loss``
    ('cosine': 1 - cos, or 'l2': squared distance).  Returns the loss history and cosine/L2 agreement
    with the teacher on ``images`` and (if given) ``val_images`` - the quality cost of dropping G.
    """
    if loss not in ("cosine", "l2"):
        raise ValueError(f"unknown distillation loss '{loss}' (cosine | l2)")
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got {images.shape}")
    targets = osf_vectors(teacher, images, batch_size)
    if targets.shape[1] != head.out_dim:
        raise ValueError(f"teacher gives {targets.shape[1]}-d vectors, head predicts {head.out_dim}")
    step = nn.TrainOneStepCell(_DistillLoss(head, loss), nn.Adam(head.trainable_params(), learning_rate=lr))
    step.set_train(True)
    rng = np.random.default_rng(seed)
    history = []
    for it in range(steps):
        idx = rng.choice(len(images), size=min(batch_size, len(images)), replace=False)
        value = float(step(Tensor(images[idx]), Tensor(targets[idx])).asnumpy())
        history.append(value)
        if log_every and (it + 1) % log_every == 0:
            print(f"distill step {it + 1}/{steps} loss {np.mean(history[-log_every:]):.4f}", flush=True)
    head.set_train(False)
    report = {"loss": history, "train": cosine_stats(osf_vectors(head, images, batch_size), targets)}
    if val_images is not None:
        val_images = np.asarray(val_images, np.float32)
        report["val"] = cosine_stats(osf_vectors(head, val_images, batch_size),
                                     osf_vectors(teacher, val_images, batch_size))
    return report


def replace_osf(wrapper: nn.Cell, provider: nn.Cell) -> nn.Cell:
    """Swap the OSF provider of a trained PTGRMWrapper (e.g. CLIP -> its distilled head).

    In GRAPH_MODE a compiled cell is cached under (phase, create time, id): assigning a new sub-cell
    alone would keep running the old graph (with the old provider), so the wrapper's create time is
    renewed to force a recompile.  A compiled cell that *contains* the wrapper must be rebuilt.
    """
    if int(provider.out_dim) != int(wrapper.osf.out_dim):
        raise ValueError(f"OSF dims differ: wrapper uses {wrapper.osf.out_dim}, new provider {provider.out_dim}")
    for p in provider.get_parameters():
        p.requires_grad = False
    wrapper.osf = provider
    object.__setattr__(wrapper, "_create_time", time.time_ns())
    return wrapper
