#!/usr/bin/env python
"""Widen a trained OSR residual restorer (``osr_resnet``) without changing what it computes (Net2WiderNet).

    python tools/widen_osr_resnet.py --src ckpt/osr_small_rain.ckpt --namespace restorer. --width 1.0 \\
        --dst runs/osr_resnet_wide_init.ckpt

Every channel group of the network (each stage's convolutions and residual blocks) grows from the source's width
to ``--width`` by copying channels: new channel j copies old channel j mod C, the weights reading a copied channel
are divided by its number of copies, so every layer's output is the old one with channels repeated and the final
image is unchanged (the tool checks this on a random input). ``--noise`` (default 0.01, relative to each tensor's
spread) then perturbs the new weights so that the copies can learn different features; the printed PSNR between
the two networks' outputs says how little that changes. Why: a wider restorer can start from the shipped one's
training instead of from scratch. The result is a plain ``osr_resnet`` checkpoint (``model.kwargs.ckpt`` of a
stage-1 config with ``width`` and ``global_skip`` as printed).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ms_osr  # noqa: E402,F401  (oneDNN cap before mindspore)
from ms_osr.cli import run_cli  # noqa: E402
from ms_osr.errors import UsageError  # noqa: E402
from ms_osr.models.osr_resnet import STAGES, stage_channels  # noqa: E402


def _layers() -> List[tuple]:
    """(conv name, index of the channel group it reads, index of the group it writes); group -1 is RGB."""
    layers, group, block = [], -1, 0
    for s, (conv, _, _, n_blocks) in enumerate(STAGES):
        layers.append((conv, group, s))
        group = s
        for _ in range(n_blocks):
            block += 1
            layers += [(f"res_{block}.conv1", s, s), (f"res_{block}.conv2", s, s)]
    layers.append(("conv_out_3", group, -1))
    return layers


def group_widths(arrays: Dict[str, np.ndarray]) -> List[int]:
    """The channel count of every group of a checkpoint's arrays (refused if they are not an osr_resnet)."""
    missing = [f"{conv}.weight" for conv, _, _ in _layers() if f"{conv}.weight" not in arrays]
    if missing:
        raise UsageError(f"not an osr_resnet checkpoint: no {', '.join(missing[:3])}"
                         f"{' ...' if len(missing) > 3 else ''} (wrapped restorers need --namespace restorer.)")
    extra = sorted(n for n in arrays if n.split(".")[0] not in {c.split(".")[0] for c, _, _ in _layers()})
    if extra:
        raise UsageError(f"holds parameters outside the plain osr_resnet ({', '.join(extra[:2])}"
                         f"{' ...' if len(extra) > 2 else ''}, e.g. a correction gate): only the plain network widens")
    return [int(arrays[f"{conv}.weight"].shape[0]) for conv, _, _, _ in STAGES]


def source_width(arrays: Dict[str, np.ndarray]) -> float:
    """A width at which :class:`Net` has the checkpoint's channel counts (to rebuild the source for the check)."""
    old = group_widths(arrays)
    for width in sorted({o / cout for o, (_, _, cout, _) in zip(old, STAGES)}):
        if stage_channels(width) == old:
            return width
    raise UsageError(f"no osr_resnet width gives the checkpoint's channels per group {old}")


def widen_arrays(arrays: Dict[str, np.ndarray], width: float, noise: float = 0.0,
                 seed: int = 0) -> Dict[str, np.ndarray]:
    """The arrays of an ``osr_resnet`` at ``width`` computing what ``arrays`` compute (plus ``noise``)."""
    old = group_widths(arrays)
    new = stage_channels(width)
    shrunk = [s for s, (o, n) in enumerate(zip(old, new)) if n < o]
    if shrunk:
        raise UsageError(f"--width {width} is narrower than the source ({old} channels per group); it only widens")
    source = {g: np.arange(n) % o for g, (o, n) in enumerate(zip(old, new))}
    source[-1] = np.arange(3)
    copies = {g: np.bincount(idx)[idx].astype(np.float32) for g, idx in source.items()}
    rng = np.random.default_rng(seed)
    out = dict(arrays)
    for conv, g_in, g_out in _layers():
        w = arrays[f"{conv}.weight"]
        wide = w[source[g_out]][:, source[g_in]] / copies[g_in][None, :, None, None]
        if noise:
            wide = wide + rng.normal(0.0, noise * float(w.std()), wide.shape)
        out[f"{conv}.weight"] = wide.astype(w.dtype)
        if f"{conv}.bias" in arrays:
            out[f"{conv}.bias"] = arrays[f"{conv}.bias"][source[g_out]].copy()
    return out


def _output(arrays: Dict[str, np.ndarray], width: float, global_skip: bool, image: np.ndarray) -> np.ndarray:
    import mindspore as ms

    from ms_osr.checkpoint import load_arrays_into_net
    from ms_osr.registry import create_model

    net = create_model("osr_resnet", width=width, global_skip=global_skip)
    load_arrays_into_net(net, arrays)
    net.set_train(False)
    return net(ms.Tensor(image)).asnumpy()


def widen(src: str, dst: str, width: float, namespace: str = "", noise: float = 0.01, seed: int = 0,
          global_skip: bool = True) -> float:
    """Write the widened checkpoint; return the PSNR (dB) between the source's and the result's outputs on a
    random 64 px image (the unperturbed widening must match to 1e-4 or nothing is written)."""
    from ms_osr.checkpoint import read_ckpt_arrays, save_arrays

    arrays = read_ckpt_arrays(src, namespace=namespace)
    try:
        old_width = source_width(arrays)
    except UsageError as exc:  # name the file
        raise UsageError(f"{src}: {exc}") from None
    image = np.random.default_rng(seed).random((1, 3, 64, 64), dtype=np.float32)
    before = _output(arrays, old_width, global_skip, image)
    exact = _output(widen_arrays(arrays, width), width, global_skip, image)
    gap = float(np.abs(exact - before).max())
    if gap > 1e-4:
        raise UsageError(f"{src}: the widened network differs by {gap:.2g} before noise (a layout this tool does "
                         "not know?); nothing written")
    wide = widen_arrays(arrays, width, noise, seed)
    after = _output(wide, width, global_skip, image)
    mse = float(np.mean((np.clip(after, 0, 1) - np.clip(before, 0, 1)) ** 2))
    save_arrays(wide, dst)
    return 10.0 * np.log10(1.0 / max(mse, 1e-20))


def _main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="checkpoint holding an osr_resnet (or an OSR wrapper's restorer)")
    ap.add_argument("--namespace", default="", help="prefix of the restorer's weights, e.g. restorer.")
    ap.add_argument("--width", type=float, required=True, help="new width (1.0 = the official channel counts)")
    ap.add_argument("--dst", required=True, help="the widened checkpoint to write")
    ap.add_argument("--noise", type=float, default=0.01, help="symmetry-breaking noise, relative (default 0.01)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-global-skip", action="store_true", help="the restorer has no global skip")
    args = ap.parse_args(argv)
    skip = not args.no_global_skip
    psnr = widen(args.src, args.dst, args.width, args.namespace, args.noise, args.seed, skip)
    print(f"wrote {args.dst}: osr_resnet width={args.width:g} global_skip={skip}; output within {psnr:.1f} dB PSNR "
          "of the source's (identical before the noise)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
