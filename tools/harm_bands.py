#!/usr/bin/env python
"""Where does a model's change do harm: in the image's tone and colour, or in its detail?

    python tools/harm_bands.py --ckpt ckpt/osr_small_rain.ckpt
    python tools/harm_bands.py --ckpt ckpt/res_hair_small.ckpt --degradations identity rain haze --crop 256

Runs the model on ``test.py --benchmark photos`` inputs (the same photos, centre crops, seeds and random
degradation parameters) and prints, per degradation, the mean PSNR (aio convention, seeds averaged per photo) of:

* ``input`` and ``output``;
* ``means``: the output with each channel's mean set back to the input's (harm in overall tone and colour);
* ``band<σ``: the output with its band below a Gaussian of σ px swapped for the input's, ``out - G(out) + G(in)``
  (harm in shading and colour that varies slowly; what is left is harm in detail finer than σ);

then the three photos the model harms most (output minus input; on clean inputs, the three lowest outputs).
On an input that needs no low-frequency change (clean photos, resampled, compressed or noisy ones) a model that
only touches detail scores the same in all columns; one that darkens gains in ``means``; one that erases fine
structure stays low in every column.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ms_osr  # noqa: E402,F401

DEFAULT_DEGRADATIONS = ("identity", "rain", "bicubic_x2", "jpeg", "noise_15", "gaussian_blur")


def band_swaps(out: np.ndarray, lq: np.ndarray, sigmas: Sequence[float] = (2, 4, 8)) -> Dict[str, np.ndarray]:
    """The output with the input's channel means (``means``) and with the input's band below each σ (``band<σ``)."""
    import cv2

    def low(x: np.ndarray, sigma: float) -> np.ndarray:
        return cv2.GaussianBlur(np.ascontiguousarray(x, np.float32), (0, 0), float(sigma))

    swaps = {"means": np.clip(out - out.mean((0, 1)) + lq.mean((0, 1)), 0, 1)}
    for s in sigmas:
        swaps[f"band<{s:g}"] = np.clip(out - low(out, s) + low(lq, s), 0, 1)
    return swaps


def main(argv: Optional[List[str]] = None) -> int:
    from ms_osr.forward import restore_array
    from ms_osr.metrics import calculate_psnr
    from ms_osr.probe import parse_probe, probe_parser
    from ms_osr.statistics import cap_psnr

    p = probe_parser(__doc__, DEFAULT_DEGRADATIONS)
    p.add_argument("--sigmas", type=float, nargs="+", default=[2, 4, 8])
    probe = parse_probe(p, argv)
    if probe is None:
        return 2
    args, net, samples = probe
    scores: Dict[str, Dict[str, Dict[str, List[float]]]] = {}  # degradation -> photo -> column -> values
    for s in samples:
        lq, clean = s.load()
        out = restore_array(net, lq)
        images = {"input": lq, "output": out, **band_swaps(out, lq, args.sigmas)}
        row = scores.setdefault(s.group, {}).setdefault(s.meta["photo"], {})
        for name, img in images.items():
            psnr = float(cap_psnr([calculate_psnr(img, clean, convention="aio")])[0])
            row.setdefault(name, []).append(psnr)
    columns = list(next(iter(next(iter(scores.values())).values())))
    print(f"{args.ckpt}: mean PSNR (dB) over {len(next(iter(scores.values())))} photos, seeds "
          f"{' '.join(map(str, args.seeds))}, centre {args.crop} px; identical images count as 100 dB")
    print(f"{'degradation':14s}" + "".join(f"{c:>10s}" for c in columns) + "   most harmed (output - input)")
    for deg, photos in scores.items():
        means = {c: np.mean([np.mean(v[c]) for v in photos.values()]) for c in columns}
        clean = means["input"] >= 100.0  # a clean input: rank by the output's own PSNR, not by a capped difference
        harm = sorted((np.mean(v["output"]) - (0.0 if clean else np.mean(v["input"])), ph) for ph, v in photos.items())
        listed = ", ".join(f"{ph} {d:.1f}" if clean else f"{ph} {d:+.1f}" for d, ph in harm[:3])
        print(f"{deg:14s}" + "".join(f"{means[c]:10.2f}" for c in columns) + "   "
              + ("lowest output: " if clean else "") + listed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
