"""Automatic tiling: estimate the peak memory of a whole-image pass and tile when it would not fit.

A whole-image pass of a 12-megapixel photo took Res-HAIR past 18 GB (issue 22).  The estimate is
linear in the padded pixel count, ``fixed + per_mpix * megapixels`` of peak-RSS growth, with the two
figures calibrated per network (class and parameter count, :func:`net_key`) on CPU by ``benchmarks/sizes.py --calibrate`` (fresh process per
size, dynamic-shape graph, MindSpore 2.10).  A network without calibration gets the costliest
calibrated figure times :data:`UNCALIBRATED_FACTOR` and the notice says so.

The limit is ``--max-memory`` or, by default, the smaller of :data:`DEFAULT_LIMIT_MIB` and half of the
memory available now: a photo then restores in tiles that cost little extra time instead of taking
the whole machine.  Image-sized buffers (input, padded copy, output accumulator, weight map) are
counted on top of the tile's activations.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, Optional
from .errors import MsOsrError  # noqa: E402

UNCALIBRATED_FACTOR = 3.0
DEFAULT_LIMIT_MIB = 2048.0
# float32 HxW buffers alive beside the tiles: input (3), padded input (3), output sum (3), weight map (1)
IMAGE_BUFFER_BYTES_PER_PIXEL = 4 * 10
TILE_STEP = 64  # automatic tile sides are multiples of this (and of the model's size multiple)
MIN_TILE = 128


class MemoryLimitError(MsOsrError, ValueError):
    """A malformed --max-memory value (one line)."""


@dataclass(frozen=True)
class MemoryCost:
    fixed_mib: float
    mib_per_mpix: float

    def estimate_mib(self, pixels: int) -> float:
        return self.fixed_mib + self.mib_per_mpix * pixels / 1e6


# Peak-RSS growth of one whole-image pass (MiB): fixed + per megapixel of padded input.  Measured by
# benchmarks/sizes.py --calibrate on 2026-12-01 (2-core AMD EPYC guest, MindSpore 2.10, CPU, dynamic graph).
CALIBRATED: Dict[str, MemoryCost] = {
    # osr_small: 256: 175, 384: 290, 512: 450, 768: 906 MiB (fit residuals <= 1 MiB)
    "OSR:54050": MemoryCost(fixed_mib=84.0, mib_per_mpix=1394.0),
    # res_hair_small: 256: 672, 384: 981, 512: 1321, 768: 3344 MiB (residuals -237..+133 MiB)
    "ResHAIR:2049743": MemoryCost(fixed_mib=199.0, mib_per_mpix=5187.0),
}


def net_key(net) -> str:
    """``<class>:<parameter count>``: one calibration per architecture and size."""
    params = getattr(net, "get_parameters", None)  # a plain callable (a test spy) has none
    return f"{type(net).__name__}:{sum(int(p.size) for p in params()) if params else '?'}"


def parse_memory(text: str) -> float:
    """``'4G'``, ``'4GB'``, ``'512M'``, ``'1.5GiB'`` or a plain number of MiB -> MiB."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not m:
        raise MemoryLimitError(f"--max-memory '{text}': expected a size such as 4G, 4096M or 1.5GB")
    value, unit = float(m.group(1)), m.group(2).upper()
    mib = value * {"": 1.0, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0 ** 2}[unit]
    if mib <= 0:
        raise MemoryLimitError(f"--max-memory '{text}': must be positive")
    return mib


def available_mib() -> Optional[float]:
    """MemAvailable from /proc/meminfo (Linux), None elsewhere."""
    try:
        with open("/proc/meminfo", "r", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def default_limit_mib() -> float:
    avail = available_mib()
    return DEFAULT_LIMIT_MIB if avail is None else min(DEFAULT_LIMIT_MIB, 0.5 * avail)


def _size(mib: float) -> str:
    return f"{mib / 1024:.1f} GB" if mib >= 1024 else f"{mib:.0f} MB"


@dataclass(frozen=True)
class TileDecision:
    tile: Optional[int]  # None: the whole image fits
    whole_mib: float
    limit_mib: float
    notice: str = ""


class MemoryPlanner:
    """Decides whether an image is restored whole or in tiles, and the tile size."""

    def __init__(self, cost: MemoryCost, calibrated: bool, limit_mib: Optional[float] = None, label: str = "model"):
        self.cost = cost
        self.calibrated = calibrated
        self.limit_mib = float(limit_mib) if limit_mib else default_limit_mib()
        self.label = label

    @classmethod
    def for_net(cls, net, limit_mib: Optional[float] = None) -> "MemoryPlanner":
        name = net_key(net)
        cost = CALIBRATED.get(name)
        if cost is not None:
            return cls(cost, True, limit_mib, name)
        worst = max(CALIBRATED.values(), key=lambda c: c.mib_per_mpix)
        return cls(MemoryCost(worst.fixed_mib * UNCALIBRATED_FACTOR, worst.mib_per_mpix * UNCALIBRATED_FACTOR),
                   False, limit_mib, name)

    def plan(self, height: int, width: int, multiple: int = 1) -> TileDecision:
        pixels = height * width
        whole = self.cost.estimate_mib(pixels)
        buffers = IMAGE_BUFFER_BYTES_PER_PIXEL * pixels / 2 ** 20
        if whole + buffers <= self.limit_mib:
            return TileDecision(None, whole, self.limit_mib)
        tile = self._largest_tile(self.limit_mib - buffers, multiple)
        how = "estimated" if self.calibrated else "guessed (uncalibrated model)"
        notice = (f"{width}x{height}: a whole-image pass needs about {_size(whole)} ({how}), over the "
                  f"{_size(self.limit_mib)} limit; restoring in {tile}x{tile} tiles "
                  f"(--tile sets the size, --max-memory the limit)")
        return TileDecision(tile, whole, self.limit_mib, notice)

    def _largest_tile(self, budget_mib: float, multiple: int) -> int:
        step = TILE_STEP * multiple // math.gcd(TILE_STEP, multiple)
        side = max(MIN_TILE, step)
        while self.cost.estimate_mib((side + step) ** 2) <= budget_mib:
            side += step
        return side
