"""Fitting PTG-RM's off-the-shelf-feature providers (:mod:`ms_osr.models.osf`) to data: the
standardisation statistics of a restoration prior, and the distillation of a prior into
:class:`~ms_osr.models.osf.DistilledOSF`.  Kept out of the model file: these run data and write files."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

import mindspore.nn as nn
from mindspore import Tensor

from ..build import create_model_from_kwargs
from ..fileio import atomic_path
from ..models.osf import DistilledOSF, l2_normalize


def calibrate_standardization(images: np.ndarray, path: str, batch_size: int = 8, **osf_kwargs) -> dict:
    """Per-dimension mean/std of a restoration prior's native vector over ``images`` (N, 3, H, W).

    ``osf_kwargs`` are those of the ``restoration_prior_osf`` model (e.g. a config's ``osf_kwargs``; ``ckpt``:
    the restorer's weights); ``out_dim``, ``normalize``, ``standardize`` and ``seed`` are ignored: the
    statistics are those of the raw vector.  Written atomically to ``path`` (``.npz``: mean, std, n);
    returns them with the raw vectors.
    """
    kw = {k: v for k, v in osf_kwargs.items() if k not in ("out_dim", "normalize", "standardize", "seed")}
    raw = osf_vectors(create_model_from_kwargs("restoration_prior_osf", {**kw, "normalize": False}), images, batch_size)
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    # a (near-)constant dimension would turn rounding noise into large z-scores
    std = np.maximum(std, 1e-3 * float(std.mean()) + 1e-8)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, mean=mean.astype(np.float32), std=std.astype(np.float32), n=np.int64(len(raw)))
    return {"mean": mean, "std": std, "raw": raw}


class _DistillLoss(nn.Cell):
    def __init__(self, head: nn.Cell, loss: str):
        super().__init__()
        self.head = head
        self.cosine = loss == "cosine"

    def construct(self, x: Tensor, target: Tensor) -> Tensor:
        pred = self.head(x)
        if self.cosine:
            return 1.0 - (l2_normalize(pred) * l2_normalize(target)).sum(axis=1).mean()
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
