#!/usr/bin/env python
"""What a model's harm gates decide: the per-image gate weight on each degradation of the photo benchmark.

    python tools/gate_weights.py --ckpt <run>/last.ckpt
    python tools/gate_weights.py --ckpt <run>/last.ckpt --degradations identity rain jpeg --seeds 0 1 2

Runs the gates of the model on ``test.py --benchmark photos`` inputs (the same photos, centre crops, seeds and
random degradation parameters) and prints, per degradation, the mean weight over photos (seeds averaged per
photo), its range and the photos with the lowest and highest weight.  Two kinds of gate (docs/osr.md §8, §10):

* ``wrapper``: the OSR wrapper's ``harm_gate`` (``x + g (y - x)``);
* ``restorer``: ``osr_resnet``'s correction gate (``x + w r``), alone or inside an OSR wrapper, where it is read
  on the image the wrapper gives its restorer (the wave's real term, or the re-formed image).

A gate that tells rain from clean content is near 1 on ``rain`` and near 0 on ``identity``; what it does out of
sample is what decides the harm there.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ms_osr  # noqa: E402,F401

DEFAULT_DEGRADATIONS = ("identity", "rain", "bicubic_x2", "bicubic_x4", "jpeg", "gaussian_blur", "noise_15",
                        "noise_50", "haze")


def image_gates(net, x) -> Dict[str, np.ndarray]:
    """``{gate: weights (B,)}`` of every harm gate of ``net`` on the batch ``x`` (B, 3, H, W); empty if none."""
    from ms_osr.models.osr import OSR

    gates = {}
    restorer, restorer_input = net, x
    if isinstance(net, OSR):
        if net.use_gate:
            gates["wrapper"] = net.harm_gate.weight(x, net.reprogrammed(x))
        restorer = net.restorer
        restorer_input = net.input_transform(x)
        if net.transform == "wave":
            restorer_input = restorer_input[0]  # the real term; the imaginary one is not an image
    if getattr(restorer, "use_gate", False) and hasattr(restorer, "features"):
        gates["restorer"] = restorer.harm_gate.weight_of(restorer.restore_with_gate(restorer_input)[1])
    return {k: v.asnumpy().reshape(-1) for k, v in gates.items()}


def main(argv: Optional[List[str]] = None) -> int:
    import mindspore as ms

    from ms_osr.probe import parse_probe, probe_parser

    p = probe_parser(__doc__, DEFAULT_DEGRADATIONS)
    probe = parse_probe(p, argv)
    if probe is None:
        return 2
    args, net, samples = probe
    weights: Dict[str, Dict[str, Dict[str, List[float]]]] = {}  # gate -> degradation -> photo -> weights
    for s in samples:
        lq, _ = s.load()
        gates = image_gates(net, ms.Tensor(np.ascontiguousarray(lq.transpose(2, 0, 1)[None], np.float32)))
        if not gates:
            print(f"error: {args.ckpt}: the model has no harm gate (harm_gate: true on osr or osr_resnet)",
                  file=sys.stderr)
            return 2
        for gate, w in gates.items():
            weights.setdefault(gate, {}).setdefault(s.group, {}).setdefault(s.meta["photo"], []).append(float(w[0]))
    for gate, by_deg in weights.items():
        n = len(next(iter(by_deg.values())))
        print(f"{args.ckpt}: {gate} gate, mean weight over {n} photos (seeds {' '.join(map(str, args.seeds))} "
              f"averaged), centre {args.crop} px")
        print(f"{'degradation':14s}{'mean':>7s}{'min':>7s}{'max':>7s}   lowest / highest")
        for deg, photos in by_deg.items():
            per_photo = sorted((float(np.mean(v)), ph) for ph, v in photos.items())
            vals = np.array([w for w, _ in per_photo])
            print(f"{deg:14s}{vals.mean():7.2f}{vals.min():7.2f}{vals.max():7.2f}   "
                  f"{per_photo[0][1]} {per_photo[0][0]:.2f} / {per_photo[-1][1]} {per_photo[-1][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
