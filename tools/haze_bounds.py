#!/usr/bin/env python
"""How far can haze (or rain) removal go on the photo benchmark's inputs?  Reference points without a network.

    python tools/haze_bounds.py                       # the headline inputs: 16 test photos x seeds 0-2, 512 px
    python tools/haze_bounds.py --seeds 0 --crop 256
    python tools/haze_bounds.py --seeds 0 --skip-ckpt runs/res_hair_small_photos_affine/last.ckpt
    python tools/haze_bounds.py --degradation rain    # the same reference points on the rain inputs
    python tools/haze_bounds.py --estimate train extra  # and a colour map estimated from image statistics

For each hazed input of ``test.py --benchmark photos --degradations haze`` (the same photos, crops, seeds and
random haze parameters) it prints the PSNR (aio convention, seeds averaged per photo, 95% bootstrap CI over
photos) of:

* ``input``: the hazed image itself;
* ``colour map``: the best single 3x4 colour map per image (a 3x3 matrix and an offset, least squares against
  the ground truth): an oracle that shows how much of haze is one image-wide affine correction;
* ``channel map``: the best gain and offset per channel (least squares against the ground truth): the same
  oracle restricted to the form ``--estimate`` predicts;
* ``dark channel``: the dark channel prior (He, Sun and Tang, CVPR 2009) with a guided-filter-refined
  transmission: a classical method, no ground truth, no training;
* ``true t, A``: inverting the scattering model with the transmission and airlight the input was made with
  (a check that the synthesis is invertible; the inputs are stored as float, not quantised).

``--degradation rain`` scores the same references (but the last) on the benchmark's rain inputs: how much of
rain is an image-wide veil that one colour map removes.  Either way the table ends with each reference's mean gain
on the light and the heavy inputs (split at their median input PSNR, as tools/severity_split.py splits a model's).

``--estimate train [extra]`` adds ``estimated map``: a gain and offset per channel predicted from 31 image
statistics by a ridge regression fitted on random crops of those corpus splits, degraded the same way, plus
clean crops (:class:`ChannelMapEstimator`): how well the veil's strength can be read from image-wide statistics
learnt on the training photos, with no network.

``--skip-ckpt`` (a Res-HAIR checkpoint with ``affine_skip``, ``dark_channel_skip`` or ``scattering_skip``)
prints instead, per input, how far the skip moves the image (mean over pixels and channels, grey levels), how
far the whole output does, and how far the ground truth lies: how much of the haze correction the skip's
transform carries.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ms_osr  # noqa: E402,F401


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1))


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 40, eps: float = 1e-3) -> np.ndarray:
    """He et al.'s guided filter (grey guide), with box means."""
    mg, ms_ = _box(guide, radius), _box(src, radius)
    a = (_box(guide * src, radius) - mg * ms_) / (_box(guide * guide, radius) - mg * mg + eps)
    return _box(a, radius) * guide + _box(ms_ - a * mg, radius)


def dark_channel_dehaze(img: np.ndarray, patch: int = 15, omega: float = 0.95, t_min: float = 0.1) -> np.ndarray:
    """Dark channel prior dehazing of an HxWx3 float image in [0, 1]: airlight from the brightest 0.1% of the
    dark channel, transmission 1 - omega * dark(I / A) refined by the guided filter, J = (I - A) / t + A."""
    x = img.astype(np.float64)
    kernel = np.ones((patch, patch), np.uint8)
    dark = cv2.erode(x.min(axis=2), kernel)
    top = np.argsort(dark.ravel())[-max(1, dark.size // 1000):]
    airlight = x.reshape(-1, 3)[top].mean(axis=0)
    t = 1.0 - omega * cv2.erode((x / airlight).min(axis=2), kernel)
    t = np.maximum(guided_filter(x.mean(axis=2), t), t_min)[..., None]
    return np.clip((x - airlight) / t + airlight, 0.0, 1.0)


def colour_map_fit(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The least-squares 3x4 colour map from ``img`` to ``ref`` applied to ``img`` (an oracle)."""
    x = np.concatenate([img.reshape(-1, 3), np.ones((img.shape[0] * img.shape[1], 1))], axis=1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(x, ref.reshape(-1, 3).astype(np.float64), rcond=None)
    return np.clip(x @ coef, 0.0, 1.0).reshape(img.shape)


def channel_map_fit(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The least-squares gain and offset per channel from ``img`` to ``ref``, applied (an oracle of the
    estimator's form)."""
    i, r = img.reshape(-1, 3).astype(np.float64), ref.reshape(-1, 3).astype(np.float64)
    gain = ((i * r).mean(0) - i.mean(0) * r.mean(0)) / np.maximum(i.var(0), 1e-12)
    return np.clip(img * gain + r.mean(0) - gain * i.mean(0), 0.0, 1.0)


def image_statistics(img: np.ndarray) -> np.ndarray:
    """31 image-wide statistics of an HxWx3 image in [0, 1], on a 128 px thumbnail: per channel the mean, std
    and 1/5/50/95/99th percentiles; the dark channel's mean and 10/50/90th percentiles; saturation, darkest
    and brightest channel means; mean gradient magnitude and local contrast."""
    s = cv2.resize(np.ascontiguousarray(img), (128, 128), interpolation=cv2.INTER_AREA).astype(np.float64)
    f = []
    for c in range(3):
        v = s[..., c].ravel()
        f += [v.mean(), v.std(), *np.percentile(v, [1, 5, 50, 95, 99])]
    lo, hi = s.min(axis=2), s.max(axis=2)
    dark = cv2.erode(lo.astype(np.float32), np.ones((5, 5), np.uint8)).astype(np.float64)
    sat = (hi - lo) / (hi + 1e-3)
    grey = s.mean(axis=2)
    grad = np.hypot(cv2.Sobel(grey, cv2.CV_64F, 1, 0), cv2.Sobel(grey, cv2.CV_64F, 0, 1))
    local_var = cv2.blur(grey * grey, (9, 9)) - cv2.blur(grey, (9, 9)) ** 2
    f += [dark.mean(), *np.percentile(dark, [10, 50, 90]), sat.mean(), np.median(sat), lo.mean(), hi.mean(),
          grad.mean(), np.sqrt(np.maximum(local_var, 0)).mean()]
    return np.array(f)


class ChannelMapEstimator:
    """A gain and an offset per channel predicted linearly from :func:`image_statistics`, with the weights
    fitted (ridge) to minimise the restored images' mean squared error over a training set: a colour map
    estimated from the image alone, which a network's global correction has to beat."""

    def __init__(self, ridge: float = 0.1):
        self.ridge = ridge

    def _design(self, feats: np.ndarray) -> np.ndarray:
        z = (feats - self.mean) / self.std
        return np.concatenate([z, np.ones((len(z), 1))], axis=1)

    def fit(self, pairs) -> "ChannelMapEstimator":
        feats = np.array([image_statistics(lq) for lq, _ in pairs])
        self.mean, self.std = feats.mean(0), feats.std(0) + 1e-8
        f = self._design(feats)
        k = f.shape[1]
        self.weights = np.zeros((3, 2 * k))
        for c in range(3):
            # per image: mean I^2, mean I, mean I*J, mean J of channel c; the MSE is quadratic in (gain, offset)
            m = np.array([[np.mean(lq[..., c] ** 2), np.mean(lq[..., c]), np.mean(lq[..., c] * gt[..., c]),
                           np.mean(gt[..., c])] for lq, gt in pairs], np.float64)
            a = np.block([[f.T @ (m[:, :1] * f), f.T @ (m[:, 1:2] * f)], [f.T @ (m[:, 1:2] * f), f.T @ f]])
            b = np.concatenate([f.T @ m[:, 2], f.T @ m[:, 3]])
            self.weights[c] = np.linalg.solve(a + self.ridge * np.eye(2 * k), b)
        return self

    def apply(self, img: np.ndarray) -> np.ndarray:
        f = self._design(image_statistics(img)[None])[0]
        k = len(f)
        gain, offset = self.weights[:, :k] @ f, self.weights[:, k:] @ f
        return np.clip(img * gain + offset, 0.0, 1.0)


def training_pairs(root: str, splits: List[str], degradation: str, crops: int, size: int):
    """``crops`` random ``size`` px crops (scale 0.2-0.9, as the shipped Res-HAIR trained) of each photo in
    ``splits``, each once degraded by ``degradation``'s random sampler and once clean: (input, target) pairs."""
    from ms_osr.data.corpus import split_paths
    from ms_osr.data.degradations import apply_spec
    from ms_osr.data.io import read_image
    from ms_osr.data.transforms import random_scaled_crop
    from ms_osr.samples import sample_rng

    pairs = []
    for path in split_paths(root, splits):
        photo, full = os.path.basename(path), read_image(path)
        for i in range(crops):
            clean = np.ascontiguousarray(random_scaled_crop(full, size, sample_rng(i, "crop", photo), (0.2, 0.9)))
            lq = apply_spec(clean, {"name": degradation, "random": True}, sample_rng(i, degradation, photo))
            pairs += [(np.clip(np.asarray(lq, np.float32), 0, 1), clean), (clean, clean)]
    return pairs


def true_inverse(lq: np.ndarray, clean: np.ndarray, photo: str, seed: int) -> np.ndarray:
    """Invert I = J t + A (1 - t) with the t and A that made ``lq`` (re-drawn from the benchmark's generator
    exactly as :func:`ms_osr.data.degradations.apply_spec` draws them)."""
    from ms_osr.data.degradations import DEPTH_LAYOUTS, haze_model, random_params, transmission
    from ms_osr.samples import sample_rng

    rng = sample_rng(seed, "haze", photo)
    p = random_params("haze", rng)
    t = transmission(DEPTH_LAYOUTS[p["layout"]](clean.shape[:2], rng), p["beta"], p["near"])[..., None]
    a = np.asarray(p["airlight"], np.float64).reshape(1, 1, -1)
    if np.abs(np.clip(haze_model(clean, t[..., 0], p["airlight"]), 0, 1) - lq).max() > 1e-4:
        raise SystemExit(f"{photo} seed {seed}: the re-drawn haze does not reproduce the benchmark input "
                         "(has the haze synthesis changed?)")
    return np.clip((lq - a * (1.0 - t)) / np.maximum(t, 1e-3), 0.0, 1.0)


def skip_shares(ckpt: str, samples) -> None:
    """Mean shift (grey levels) of the skip image, of the output and of the ground truth from each input."""
    import mindspore as ms
    from ms_osr.build import load_model

    net = load_model(ckpt).net
    if not getattr(net, "has_skip_transform", False):
        raise SystemExit(f"{ckpt}: the model's skip is the input itself (needs a skip transform: affine_skip, "
                         f"dark_channel_skip or scattering_skip)")
    net.set_train(False)
    shifts = []
    for s in samples:
        lq, clean = s.load()
        x = ms.Tensor(np.ascontiguousarray(lq.transpose(2, 0, 1)[None]))
        out, _, skip = net.restore_parts(x)
        out, skip = (t.asnumpy()[0].transpose(1, 2, 0) for t in (out, skip))
        shifts.append([255 * float((v - lq).mean()) for v in (skip, out, clean)])
        print(f"{s.name:<22} skip {shifts[-1][0]:+6.1f}   output {shifts[-1][1]:+6.1f}   ground truth "
              f"{shifts[-1][2]:+6.1f}", flush=True)
    m = np.mean(shifts, axis=0)
    print(f"mean over {len(shifts)} inputs: skip {m[0]:+.1f}, output {m[1]:+.1f}, ground truth {m[2]:+.1f}")


def main(argv: List[str] | None = None) -> None:
    from ms_osr.metrics import calculate_psnr
    from ms_osr.samples import photo_samples
    from ms_osr.statistics import cap_psnr, mean_ci, paired_difference

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default="data/photos")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--crop", type=int, default=512)
    p.add_argument("--degradation", choices=("haze", "rain"), default="haze")
    p.add_argument("--estimate", nargs="+", metavar="SPLIT",
                   help="add a colour map estimated from image statistics (ChannelMapEstimator), fitted on random "
                        "crops of these corpus splits (e.g. train, or train extra)")
    p.add_argument("--estimate-crops", type=int, default=12, help="crops per training photo for --estimate")
    p.add_argument("--skip-ckpt", help="a Res-HAIR checkpoint with a skip transform: how much "
                                            "of the shift its skip carries")
    args = p.parse_args(argv)
    if args.skip_ckpt:
        return skip_shares(args.skip_ckpt, photo_samples(args.root, ["haze"], args.seeds, crop=args.crop))

    haze = args.degradation == "haze"
    methods = ("input", "colour map", "channel map", "dark channel") + (("true t, A",) if haze else ())
    estimator = None
    if args.estimate:
        estimator = ChannelMapEstimator().fit(training_pairs(args.root, args.estimate, args.degradation,
                                                             args.estimate_crops, args.crop))
        methods += ("estimated map",)
    per_photo: Dict[str, Dict[str, List[float]]] = {}
    per_input: List[List[float]] = []
    for s in photo_samples(args.root, [args.degradation], args.seeds, crop=args.crop):
        lq, clean = s.load()
        photo, seed = s.meta["photo"], s.meta["seed"]
        outs = [lq, colour_map_fit(lq, clean), channel_map_fit(lq, clean), dark_channel_dehaze(lq)]
        if haze:
            outs.append(true_inverse(lq, clean, photo, seed))
        if estimator is not None:
            outs.append(estimator.apply(lq))
        scores = [float(cap_psnr([calculate_psnr(o, clean, convention="aio")])[0]) for o in outs]
        per_input.append(scores)
        for m, v in zip(methods, scores):
            per_photo.setdefault(photo, {}).setdefault(m, []).append(v)
        print(f"{photo:<14} seed {seed}: " + ", ".join(f"{m} {v:.2f}" for m, v in zip(methods, scores)), flush=True)
    photos = sorted(per_photo)
    means = {m: [float(np.mean(per_photo[ph][m])) for ph in photos] for m in methods}
    print(f"\n{len(photos)} photos x {len(args.seeds)} seeds, {args.crop} px, PSNR dB (aio), 95% bootstrap CI:")
    for m in methods:
        gain = "" if m == "input" else f"   over the input {paired_difference(means[m], means['input']).text()}"
        print(f"  {m:<13} {mean_ci(means[m]).text()}{gain}")
    scores = np.array(per_input)
    split = float(np.median(scores[:, 0]))
    light = scores[:, 0] >= split
    print(f"mean gain over the input of light (input PSNR >= {split:.2f} dB) / heavy inputs (each input once):")
    for i, m in enumerate(methods[1:], start=1):
        print(f"  {m:<13} light {np.mean(scores[light, i] - scores[light, 0]):+.2f}   "
              f"heavy {np.mean(scores[~light, i] - scores[~light, 0]):+.2f}")


if __name__ == "__main__":
    main()
