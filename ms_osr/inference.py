"""Whole-image and tiled inference for any ms_osr restorer.

:class:`Restorer` turns an ``nn.Cell`` (input/output ``(B,3,H,W)`` float32 in [0, 1]) into
a function ``HxWx3 ndarray -> HxWx3 ndarray`` that

* pads the image to the model's ``size_multiple`` (reflect) and crops the result back,
* optionally splits a large image into overlapping tiles and blends them without seams
  (each tile's border strip, which sees the tile edge instead of real context, gets zero
  weight; the rest of the overlap is a linear cross-fade; only one tile's activations live
  at a time, the output is accumulated tile by tile),
* shares one image-level vector between all tiles for models that select their weights
  from the whole image (Res-HAIR exposes ``global_vector(x)`` and ``construct(x, giv)``), so
  tiling never changes the selected weights,
* optionally averages the eight flip/rotation variants (x8 self-ensemble).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from . import cpu_isa  # noqa: F401  (oneDNN cap before mindspore loads)

import mindspore as ms  # noqa: E402

from .data.transforms import dihedral  # noqa: E402
from .forward import from_batch, to_batch  # noqa: E402
from .graphs import GraphRunner  # noqa: E402
from .memory_plan import MemoryPlanner  # noqa: E402

# --------------------------------------------------------------------------------------
# Geometry helpers (pure numpy, unit-tested directly)
# --------------------------------------------------------------------------------------


def round_up(value: int, multiple: int) -> int:
    return ((value + multiple - 1) // multiple) * multiple


def pad_image(img: np.ndarray, multiple: int, mode: str = "reflect",
              min_size: int = 1) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Pad HxWxC at the bottom/right to a multiple of ``multiple`` (and at least ``min_size``);
    returns (padded, (h, w)).

    Reflect padding needs at least two pixels; thinner images fall back to edge padding.
    """
    h, w = img.shape[:2]
    ph = max(round_up(h, multiple), round_up(min_size, multiple)) - h
    pw = max(round_up(w, multiple), round_up(min_size, multiple)) - w
    if ph == 0 and pw == 0:
        return img, (h, w)
    if mode == "reflect" and (h < 2 or w < 2):
        mode = "edge"
    pad = [(0, ph), (0, pw)] + [(0, 0)] * (img.ndim - 2)
    return np.pad(img, pad, mode=mode), (h, w)


def tile_starts(length: int, tile: int, stride: int) -> List[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)``; the last one ends at ``length``."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def blend_ramp(length: int, overlap: int, left: bool, right: bool) -> np.ndarray:
    """1-D blending weights for a tile of ``length`` pixels.

    On an interior side (``left``/``right`` True) the first ``overlap // 4`` pixels get weight 0
    (they are closest to the artificial tile edge, where a convolution sees padding instead
    of the neighbouring pixels), then the weight rises linearly over half the overlap.  Two
    tiles that overlap by ``overlap`` pixels therefore always have a positive weight sum, and
    every pixel is taken only from tiles where it lies at least ``overlap // 4`` pixels away
    from an artificial edge.
    """
    w = np.ones(length, np.float32)
    if overlap <= 0:
        return w
    margin = overlap // 4
    ramp = max(overlap - 2 * margin, 1)
    i = np.arange(length, dtype=np.float32)
    rise = np.clip((i - margin + 1) / (ramp + 1), 0.0, 1.0)
    if left:
        w = np.minimum(w, rise)
    if right:
        w = np.minimum(w, rise[::-1])
    return w


@dataclass
class TilePlan:
    tile_h: int
    tile_w: int
    overlap: int
    ys: List[int]
    xs: List[int]

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)


def plan_tiles(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> TilePlan:
    """Tile layout for a (padded) image whose sides are multiples of ``multiple``.

    Tile size, overlap and every offset are multiples of ``multiple`` so that the
    down/up-sampling grid of a U-Net is the same in a tile as in the whole image.
    """
    if tile <= 0:
        raise ValueError(f"tile size must be positive, got {tile}")
    if overlap < 0:
        raise ValueError(f"tile overlap must be >= 0, got {overlap}")
    tile = max(multiple, (tile // multiple) * multiple)
    overlap = round_up(overlap, multiple) if overlap else 0
    if overlap >= tile:
        raise ValueError(f"tile overlap {overlap} must be smaller than the tile size {tile}")
    th, tw = min(tile, height), min(tile, width)
    stride = tile - overlap
    return TilePlan(th, tw, overlap, tile_starts(height, th, stride), tile_starts(width, tw, stride))


# --------------------------------------------------------------------------------------
# Self-ensemble transforms
# --------------------------------------------------------------------------------------

ENSEMBLE_MODES = tuple((k, f) for f in (False, True) for k in range(4))


def ensemble_forward(img: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """Rotate the (mirrored when ``flip``) image by k x 90 degrees: rot90(fliplr(x), k) = fliplr(rot90(x, -k))."""
    return dihedral(img, (-k) % 4 + 4 if flip else k % 4)


def ensemble_inverse(img: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """Undo :func:`ensemble_forward`: fliplr(rot90(y, -k))."""
    return dihedral(img, (-k) % 4 + (4 if flip else 0))


# --------------------------------------------------------------------------------------
# The restorer
# --------------------------------------------------------------------------------------


def has_global_vector(net) -> bool:
    """True for models whose weights are selected from an image-level vector (Res-HAIR)."""
    return callable(getattr(net, "global_vector", None))


def _resize_max_side(img: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    scale = max_side / float(max(h, w))
    if scale >= 1.0:
        return img
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


class Restorer:
    """Restore HxWx3 float32 images in [0, 1] with a MindSpore network.

    Args:
        net: the network; ``net.size_multiple`` (default 1) is honoured.
        tile: tile side in pixels (None: whole image).
        tile_overlap: overlap between neighbouring tiles in pixels.
        self_ensemble: average the eight flip/rotation variants.
        global_max_side: for ``global_vector`` models under tiling, the whole image is
            downscaled to at most this side before the global vector is computed.
        clip: clip the output to [0, 1].
        progress: show a tqdm bar over the tiles of large images (stderr).
        shapes: how images of many sizes share compiled graphs (``ms_osr.graphs``: auto, dynamic,
            bucket, static); ``max_graphs`` and ``bucket`` are passed on.
        memory: decides automatic tiling when ``tile`` is None (``ms_osr.memory_plan``); default: a
            planner for this net with the default limit.  ``notify`` receives its one-line notices.
    """

    def __init__(self, net, tile: Optional[int] = None, tile_overlap: int = 32, self_ensemble: bool = False,
                 global_max_side: int = 1024, clip: bool = True, size_multiple: Optional[int] = None,
                 progress: bool = False, shapes: str = "auto", max_graphs: int = 4, bucket: int = 64,
                 memory: Optional[MemoryPlanner] = None, notify: Optional[Callable[[str], None]] = None):
        self.net = net
        net.set_train(False)
        self.size_multiple = int(size_multiple or getattr(net, "size_multiple", 1) or 1)
        # Res-HAIR pads to 32 px inside construct; a dynamic-shape graph cannot, so the padding happens here
        self.min_size = int(getattr(net, "min_size", 1) or 1)
        self.runner = GraphRunner(net, shapes, max_graphs, bucket)
        self.memory = memory or MemoryPlanner.for_net(net)
        self.notify = notify
        self._noticed_tile: Optional[int] = None
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.self_ensemble = self_ensemble
        self.global_max_side = global_max_side
        self.clip = clip
        self.progress = progress
        self.uses_global_vector = has_global_vector(net)
        # Filled by _restore_tiled for inspection (tests, logs): the vector shared by the tiles.
        self.last_global_vector: Optional[np.ndarray] = None
        self.last_plan: Optional[TilePlan] = None

    # -- network calls ------------------------------------------------------------------
    def _forward(self, x_hwc: np.ndarray, giv=None, fixed: bool = False) -> np.ndarray:
        x = ms.Tensor(to_batch(x_hwc), ms.float32)
        extra = () if giv is None else (giv,)
        out = from_batch(self.runner(x, *extra, fixed=fixed))  # one rule for networks with several outputs
        if out.shape != x_hwc.shape:
            raise RuntimeError(f"model returned shape {out.shape} for input {x_hwc.shape}")
        return out

    def global_vector(self, padded: np.ndarray):
        """The image-level vector of the whole (padded, downscaled if large) image."""
        small = _resize_max_side(padded, self.global_max_side)
        small, _ = pad_image(small, self.size_multiple)
        x = ms.Tensor(np.ascontiguousarray(small.transpose(2, 0, 1)[None]), ms.float32)
        return self.net.global_vector(x)

    # -- single pass ----------------------------------------------------------------------
    def _restore_once(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        tile = self.tile or self._auto_tile(h, w)
        if tile and (h > tile or w > tile):
            padded, _ = pad_image(img, self.size_multiple, min_size=self.min_size)
            out = self._restore_tiled(padded, tile)
        else:  # under the bucket strategy the pad reaches the bucket size
            padded, _ = pad_image(img, self.runner.pad_multiple(self.size_multiple), min_size=self.min_size)
            out = self._forward(padded)
        return out[:h, :w]

    def _auto_tile(self, h: int, w: int) -> Optional[int]:
        """A tile size when the whole-image pass would not fit the memory limit (one notice per tile size)."""
        decision = self.memory.plan(h, w, self.size_multiple)
        if decision.tile is None or (h <= decision.tile and w <= decision.tile):
            return None  # fits, or already no larger than the smallest tile
        if self.notify is not None and decision.tile != self._noticed_tile:
            self.notify(decision.notice)
            self._noticed_tile = decision.tile
        return decision.tile

    def _restore_tiled(self, padded: np.ndarray, tile: int) -> np.ndarray:
        ph, pw = padded.shape[:2]
        plan = plan_tiles(ph, pw, tile, self.tile_overlap, self.size_multiple)
        self.last_plan = plan
        giv = None
        if self.uses_global_vector:
            giv = self.global_vector(padded)
            self.last_global_vector = giv.asnumpy() if hasattr(giv, "asnumpy") else np.asarray(giv)
        out = np.zeros((ph, pw, padded.shape[2]), np.float32)
        weight = np.zeros((ph, pw), np.float32)
        ny, nx = len(plan.ys), len(plan.xs)
        bar = None
        if self.progress and len(plan) > 1:
            from tqdm import tqdm

            bar = tqdm(total=len(plan), desc="tiles", unit="tile", leave=False)
        for iy, y0 in enumerate(plan.ys):
            wy = blend_ramp(plan.tile_h, plan.overlap, iy > 0, iy < ny - 1)
            for ix, x0 in enumerate(plan.xs):
                wx = blend_ramp(plan.tile_w, plan.overlap, ix > 0, ix < nx - 1)
                # full T x T tiles share one static graph (with the CPU kernels) across images; a tile cut
                # to a shorter image side (T x h) would add a static graph per image: the general way
                tile_out = self._forward(padded[y0:y0 + plan.tile_h, x0:x0 + plan.tile_w], giv,
                                         fixed=plan.tile_h == plan.tile_w)
                wt = wy[:, None] * wx[None, :]
                out[y0:y0 + plan.tile_h, x0:x0 + plan.tile_w] += tile_out * wt[:, :, None]
                weight[y0:y0 + plan.tile_h, x0:x0 + plan.tile_w] += wt
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        out /= weight[:, :, None]
        return out

    # -- public -----------------------------------------------------------------------------
    def __call__(self, img: np.ndarray) -> np.ndarray:
        img = np.asarray(img, np.float32)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 image, got shape {img.shape}")
        if self.self_ensemble:
            acc = np.zeros_like(img)
            for k, flip in ENSEMBLE_MODES:
                acc += ensemble_inverse(self._restore_once(ensemble_forward(img, k, flip)), k, flip)
            out = acc / len(ENSEMBLE_MODES)
        else:
            out = self._restore_once(img)
        if self.clip:  # in place: a 4096x4096 result is 200 MB
            out = np.clip(out, 0.0, 1.0, out=out) if out.flags.writeable else np.clip(out, 0.0, 1.0)
        return out


def restore(net, img: np.ndarray, **kwargs) -> np.ndarray:
    """One-shot convenience wrapper around :class:`Restorer`."""
    return Restorer(net, **kwargs)(img)


# --------------------------------------------------------------------------------------
# Peak memory measurement (Linux): resettable high-water mark of the resident set
# --------------------------------------------------------------------------------------


def _status_kib(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status", "r", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def measure_peak_rss(fn: Callable[[], object]) -> Tuple[object, float, float]:
    """Run ``fn`` and return (result, peak RSS during the call in MiB, RSS before in MiB)."""
    reset_peak_rss()
    before = (_status_kib("VmRSS") or 0) / 1024.0
    result = fn()
    peak = (_status_kib("VmHWM") or 0) / 1024.0
    return result, peak, before


__all__: Sequence[str] = (
    "Restorer", "restore", "pad_image", "plan_tiles", "tile_starts", "blend_ramp", "TilePlan",
    "ENSEMBLE_MODES", "ensemble_forward", "ensemble_inverse", "has_global_vector", "measure_peak_rss",
    "reset_peak_rss", "load_model", "find_config", "LoadedModel", "ModelLoadError",
)


# Building a network from a checkpoint and its config lives with the weights (ms_osr.build); the names stay
# importable from here.
from .build import LoadedModel, ModelLoadError, find_config, load_model, model_spec_from_config  # noqa: E402,F401
