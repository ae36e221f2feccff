"""Off-the-shelf-feature (OSF) providers for PTG-RM: one interface, three sources and a control.

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
  teacher provider's vector from the degraded image, trained with
  :func:`ms_osr.training.osf_distill.train_distilled_osf`, so
  inference needs no large encoder (not in the paper; its §3 leaves G-free inference open).
* ``constant``: :class:`ConstantOSF` - the same unit vector for every image (a seeded random one, or a
  given one): PTG-RM trained with it has the module's full capacity but no prior information, the
  control that tells what a prior adds (docs/ptg_rm.md).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter, Tensor

from ..errors import ModelArgumentError
from ..graph_cache import renew_create_time
from ..precision import cast_like
from ..registry import SubModel, create_model, register_model
from .layers import conv2d, freeze


def l2_normalize(v: Tensor) -> Tensor:
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
    adaptation is PTG-RM's own T_m / T_c MLPs.  ``standardize``: per-dimension mean/std of the native
    vector on training images (an object with ``mean``/``std``, read by :func:`ms_osr.build.create_model`
    from the ``.npz`` of :func:`ms_osr.training.osf_distill.calibrate_standardization`; ``True``: the
    values come from the model's checkpoint), frozen as ``std_mean`` / ``std_scale``: z-scores replace
    the raw values, so that g varies between images instead of being dominated by the part shared by
    all of them.
    """

    def __init__(self, model="res_hair_small", model_kwargs: Optional[dict] = None, feature: str = "auto",
                 out_dim: Optional[int] = None, normalize: bool = True, seed: int = 0, standardize=None):
        super().__init__()
        # a registered name (random weights), or a restorer cell already built and loaded by ms_osr.build
        prior = create_model(model, **(model_kwargs or {})) if isinstance(model, str) else model
        label = model if isinstance(model, str) else type(model).__name__
        self.prior = prior
        if feature == "auto":
            feature = "global_vector" if hasattr(self.prior, "global_vector") else "output_stats"
        if feature == "global_vector":
            if not hasattr(self.prior, "global_vector"):
                raise ModelArgumentError(f"model '{label}' has no global_vector(); use feature='output_stats'")
            native = int(getattr(self.prior, "giv_dim", 0)) or self._probe_dim()
        elif feature == "output_stats":
            native = 15
        else:
            raise ModelArgumentError(f"unknown restoration_prior feature '{feature}' (global_vector|output_stats)")
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
        self.has_std = standardize is not None and standardize is not False
        if self.has_std:
            mean, std = _standardization(standardize, native)
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
            v = ops.matmul(v, cast_like(self.proj, v))  # float16 under AMP
        if self.normalize:
            v = l2_normalize(v)
        return v


def _standardization(spec, dim: int):
    """(mean, std) float32 (dim,) arrays: from ``spec.mean``/``spec.std``, or placeholders when ``spec``
    is True (the checkpoint loaded afterwards holds the values)."""
    if spec is True:
        return np.zeros(dim, np.float32), np.ones(dim, np.float32)
    mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
    if mean.shape != (dim,) or std.shape != (dim,):
        raise ModelArgumentError(f"{getattr(spec, 'source', 'standardisation')}: mean/std shapes "
                                 f"{mean.shape}/{std.shape}, this prior's native vector has {dim} values")
    return mean, std


class DistilledOSF(nn.Cell):
    """Small head predicting a teacher's OSF from the degraded image (any size).

    clamp -> [conv3x3 stride 2 -> LReLU] x 4 (width, 2w, 4w, 4w) -> per-channel mean and std
    (std keeps noise/blur level) -> Dense(8w, hidden) -> LReLU -> Dense(hidden, out_dim)
    -> L2 normalisation (CLIP vectors are unit length).  Default: 438,208 parameters.
    """

    def __init__(self, out_dim: int = 512, width: int = 32, hidden: int = 256, normalize: bool = True):
        super().__init__()
        self.out_dim = int(out_dim)
        self.normalize = normalize
        chans = (3, width, width * 2, width * 4, width * 4)
        self.body = nn.SequentialCell(sum(([conv2d(chans[i], chans[i + 1], 3, stride=2, bias=True),
                                            nn.LeakyReLU(alpha=0.1)] for i in range(4)), []))
        self.fc1 = nn.Dense(width * 8, hidden, has_bias=True)
        self.fc2 = nn.Dense(hidden, out_dim, has_bias=True)
        self.lrelu = nn.LeakyReLU(alpha=0.1)

    def construct(self, x: Tensor) -> Tensor:
        mean, std = _mean_std(self.body(ops.clamp(x, 0.0, 1.0)))
        v = self.fc2(self.lrelu(self.fc1(ops.concat((mean, std), axis=1))))
        if self.normalize:
            v = l2_normalize(v)
        return v


class ConstantOSF(nn.Cell):
    """A prior that ignores the image: ``g`` (out_dim,) for every batch element, a frozen parameter.

    ``vector`` gives g; otherwise a seeded random direction.  g has unit length like CLIP's vectors and the
    restoration priors' (T_m/T_c have no bias, so g = 0 would switch the modulation off instead of
    removing its information).
    """

    def __init__(self, out_dim: int = 64, seed: int = 0, vector: Optional[np.ndarray] = None):
        super().__init__()
        if vector is None:
            vector = np.random.default_rng(seed).standard_normal(int(out_dim))
            vector = vector / np.linalg.norm(vector)
        vector = np.asarray(vector, np.float32).reshape(1, -1)
        self.out_dim = int(vector.shape[1])
        self.g = Parameter(Tensor(vector), name="g", requires_grad=False)

    def construct(self, x: Tensor) -> Tensor:
        return ops.broadcast_to(self.g, (x.shape[0], self.out_dim))


# OSF kinds (``ptg_rm_wrapper(osf=...)``) -> (key of osf_kwargs that may name the model, registered name)
OSF_MODELS = {"clip": ("config", "clip_vit_b32"), "restoration_prior": ("", "restoration_prior_osf"),
              "distilled": ("", "distilled_osf"), "constant": ("", "constant_osf")}


def build_osf(kind: str, **kwargs) -> nn.Cell:
    """OSF provider by kind: 'clip' | 'restoration_prior' | 'distilled' | 'constant' (kwargs go to its constructor;
    'clip' takes ``config``: 'clip_vit_b32' default, 'clip_tiny' for tests).  Random weights: to load
    them use :func:`ms_osr.build.create_model`, which reads ``ckpt`` from the same kwargs."""
    if kind not in OSF_MODELS:
        raise ModelArgumentError(f"unknown OSF provider '{kind}' (clip | restoration_prior | distilled | constant)")
    key, name = OSF_MODELS[kind]
    return create_model(kwargs.pop(key, name) if key else name, **kwargs)


@register_model(submodels=(SubModel("model", kwargs="model_kwargs", ckpt="ckpt", warn_random=True),),
                files={"standardize": "standardization"})
def restoration_prior_osf(**kwargs) -> RestorationPriorOSF:
    """A frozen restorer as PTG-RM's prior; ``ckpt`` names the restorer's weights."""
    return RestorationPriorOSF(**kwargs)


@register_model
def distilled_osf(**kwargs) -> DistilledOSF:
    """The small head distilled from a prior (:mod:`ms_osr.training.osf_distill`)."""
    return DistilledOSF(**kwargs)


@register_model
def constant_osf(**kwargs) -> ConstantOSF:
    """The image-independent control prior (a fixed unit vector)."""
    return ConstantOSF(**kwargs)


def replace_osf(wrapper: nn.Cell, provider: nn.Cell) -> nn.Cell:
    """Swap the OSF provider of a trained PTGRMWrapper (e.g. CLIP -> its distilled head).

    The wrapper is compiled anew (:mod:`ms_osr.graph_cache`); a compiled cell that *contains* the wrapper
    must be rebuilt.
    """
    if int(provider.out_dim) != int(wrapper.osf.out_dim):
        raise ValueError(f"OSF dims differ: wrapper uses {wrapper.osf.out_dim}, new provider {provider.out_dim}")
    wrapper.osf = freeze(provider)
    renew_create_time(wrapper)
    return wrapper
