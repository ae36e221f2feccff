"""Is Res-HAIR's hypernetwork at work?  Selection entropy, kernel spread and GIV separability.

HAIR's claim is that a degradation-aware vector (the GIV) makes the Hyper Selecting Nets pick
different weights for different degradations.  Three figures test that on degraded images
whose degradation is known:

* **selection entropy** per block: the entropy of the HSN's softmax over the K rows of its
  weight box, divided by log K (1 = uniform mix, every image gets the mean kernel; 0 = one row);
* **kernel spread** per level: the mean distance of the per-image mixed kernels from their mean,
  relative to the mean's norm (0 = a static network);
* **GIV separability**: the share of the GIV's variance explained by the degradation type
  (between-type / total sum of squares) and the leave-one-out nearest-centroid accuracy
  (chance = 1 / number of types).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import numpy as np


@dataclass
class HairDiagnostics:
    entropy: Dict[str, float] = field(default_factory=dict)   # block -> mean normalised entropy
    spread: Dict[str, float] = field(default_factory=dict)    # level -> relative kernel spread
    giv_r2: float = float("nan")
    giv_accuracy: float = float("nan")
    chance: float = float("nan")
    images: int = 0

    def summary(self) -> Dict[str, float]:
        """Scalars for training logs: mean entropy, mean spread, GIV R² and accuracy."""
        return {"hsn_entropy": float(np.mean(list(self.entropy.values()))) if self.entropy else float("nan"),
                "kernel_spread": float(np.mean(list(self.spread.values()))) if self.spread else float("nan"),
                "giv_r2": self.giv_r2, "giv_accuracy": self.giv_accuracy}

    def table(self) -> str:
        lines = [f"Res-HAIR diagnostics on {self.images} degraded images "
                 f"(entropy 1 = uniform selection; spread 0 = static kernels)",
                 f"{'block':28s} {'entropy':>8s}"]
        lines += [f"{k:28s} {v:8.4f}" for k, v in self.entropy.items()]
        lines += [f"{'level':28s} {'spread':>8s}"]
        lines += [f"{k:28s} {v:8.4%}" for k, v in self.spread.items()]
        lines.append(f"GIV: degradation type explains {self.giv_r2:.1%} of its variance; leave-one-out "
                     f"nearest-centroid accuracy {self.giv_accuracy:.1%} (chance {self.chance:.1%})")
        return "\n".join(lines)


def normalised_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy of each row of ``p`` (rows sum to 1) divided by log K."""
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1.0)
    k = p.shape[-1]
    return -(p * np.log(p)).sum(-1) / np.log(k) if k > 1 else np.zeros(p.shape[:-1])


def separability(vectors: np.ndarray, labels: Sequence[str]) -> Tuple[float, float, float]:
    """(R², leave-one-out nearest-centroid accuracy, chance) of ``vectors`` grouped by ``labels``."""
    x = np.asarray(vectors, np.float64)
    y = np.asarray(labels)
    classes = sorted(set(y.tolist()))
    total = ((x - x.mean(0)) ** 2).sum()
    between = sum((y == c).sum() * ((x[y == c].mean(0) - x.mean(0)) ** 2).sum() for c in classes)
    r2 = float(between / total) if total > 0 else float("nan")
    correct = 0
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        cents = {c: x[keep & (y == c)].mean(0) for c in classes if (keep & (y == c)).any()}
        guess = min(cents, key=lambda c: ((x[i] - cents[c]) ** 2).sum())
        correct += guess == y[i]
    return r2, correct / len(x), 1.0 / len(classes)


def hyper_levels(net) -> List[Tuple[str, object]]:
    """The ``HyLevel`` cells of a Res-HAIR network (name, cell), in network order."""
    from .models.hair import HyLevel

    return [(name, cell) for name, cell in net.cells_and_names() if isinstance(cell, HyLevel)]


def diagnose(net, images: Sequence[np.ndarray], labels: Sequence[str]) -> HairDiagnostics:
    """Diagnostics of a Res-HAIR ``net`` on degraded ``images`` (HxWx3 float) of known ``labels``."""
    import mindspore as ms

    levels = hyper_levels(net)
    if not levels or not hasattr(net, "global_vector"):
        raise ValueError(f"{type(net).__name__} is not a Res-HAIR network (no Hyper Selecting Nets)")
    givs = np.concatenate([net.global_vector(ms.Tensor(img.transpose(2, 0, 1)[None].astype(np.float32))).asnumpy()
                           for img in images])
    out = HairDiagnostics(images=len(images))
    g = ms.Tensor(givs.astype(np.float32))
    for name, level in levels:
        box = level.kernel_box.asnumpy().astype(np.float64)
        for i, hsn in enumerate(level.extracts):
            mix = hsn(g).asnumpy().astype(np.float64)
            out.entropy[f"{name}.{i}"] = float(normalised_entropy(mix).mean())
            kernels = mix @ box
            mean = kernels.mean(0)
            out.spread[f"{name}.{i}"] = float(np.linalg.norm(kernels - mean, axis=1).mean() /
                                              max(np.linalg.norm(mean), 1e-12))
    out.giv_r2, out.giv_accuracy, out.chance = separability(givs, labels)
    return out


def validation_summary(net, view) -> Dict[str, float]:
    """:meth:`HairDiagnostics.summary` on a validation view (items named ``<image>__<degradation>`` by
    synthetic sources); ``{}`` for networks without Hyper Selecting Nets, so the trainer can always call it."""
    if not hyper_levels(net) or not hasattr(net, "global_vector"):
        return {}
    images, labels = [], []
    for lq, _gt, name in view:
        images.append(np.asarray(lq, np.float32))
        labels.append(name.rsplit("__", 1)[-1] if "__" in name else "all")
    return diagnose(net, images, labels).summary()


def degraded_crops(root: str, split: str = "test", degradations: Sequence[str] = ("noise_25", "rain", "haze"),
                   size: int = 128, seed: int = 0) -> Tuple[List[np.ndarray], List[str]]:
    """One seeded crop per (photo, degradation) of the photo corpus, degraded with random parameters."""
    from .data.corpus import split_paths
    from .data.degradations import apply_spec
    from .data.io import read_image
    from .data.transforms import random_crop
    from .evaluation import sample_rng

    images, labels = [], []
    for path in split_paths(root, split):
        clean = read_image(path)
        for deg in degradations:
            rng = sample_rng(seed, deg, path)
            crop = random_crop(clean, size, rng)
            images.append(np.clip(apply_spec(crop, {"name": deg, "random": True},
                                             rng), 0, 1).astype(np.float32))
            labels.append(deg)
    return images, labels
