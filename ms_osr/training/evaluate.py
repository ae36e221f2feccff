"""Validation on the one evaluation path: the samples of an :class:`~ms_osr.data.datasets.EvalView` scored by
:func:`ms_osr.evaluation.evaluate_samples`, the function test.py scores with, so ``best.ckpt`` is chosen the
way it is later measured."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np

from ..errors import EvaluationError
from ..evaluation import evaluate_samples
from ..forward import restore_array
from ..samples import Sample


class NetRestorer:
    """A network as evaluation's restore function: the whole image in one call (``net`` lets
    :func:`ms_osr.input_size.model_unit` see its size multiple)."""

    def __init__(self, net):
        self.net = net

    def __call__(self, lq: np.ndarray) -> np.ndarray:
        return restore_array(self.net, lq)


def restore(net, lq: np.ndarray) -> np.ndarray:
    """HxWx3 [0,1] -> restored HxWx3 [0,1] (batch of one, output clipped)."""
    return restore_array(net, lq)


def view_samples(view) -> List[Sample]:
    """One :class:`Sample` per item of ``view`` (name as the source gives it, group after ``__``)."""
    out = []
    for i in range(len(view)):
        name = view.source.name(i)  # what view.get(i) names the item, without loading it
        out.append(Sample(name, (lambda i=i: view.get(i)[:2]), group=name.split("__", 1)[1] if "__" in name else ""))
    return out


def evaluate_net(net, view, metrics: Optional[Dict] = None) -> Dict:
    """Mean PSNR/SSIM of the restored and of the degraded input over ``view``; also per
    degradation (the part of the sample name after ``__``) in ``groups``."""
    mc = dict(metrics or {})
    net.set_train(False)
    res = evaluate_samples(NetRestorer(net), view_samples(view), conventions=(mc.get("convention", "aio"),),
                           crop_border=int(mc.get("crop_border", 0)), y_channel=bool(mc.get("test_y_channel", False)))
    if res.errors:
        raise EvaluationError(f"validation: {res.errors[0]}")
    items = [{"name": r["image"], "psnr": r["psnr"], "ssim": r["ssim"], "input_psnr": r["psnr_in"],
              "input_ssim": r["ssim_in"]} for r in res.records]
    if not items:
        raise EvaluationError("validation set is empty")
    groups = defaultdict(list)
    for it in items:
        groups[it["name"].split("__", 1)[1] if "__" in it["name"] else "all"].append(it)

    def mean(rows, key):
        vals = [r[key] for r in rows if np.isfinite(r[key])]
        return float(np.mean(vals)) if vals else float("inf")

    keys = ("psnr", "ssim", "input_psnr", "input_ssim")
    return {**{k: mean(items, k) for k in keys},
            "groups": {g: {k: mean(rows, k) for k in keys} for g, rows in sorted(groups.items())},
            "items": items}


def heldout_report(ckpt: str, config: str, degradations=None, crop: Optional[int] = None, seed: int = 0) -> Dict:
    """Evaluate ``ckpt`` (model from ``config``) on the held-out scikit-image samples for each degradation
    (default: the ones the config's validation uses), full images unless ``crop``."""
    from ..build import load_model
    from ..data import datasets as DS

    loaded = load_model(ckpt, config=config)
    cfg, net = loaded.config, loaded.net
    if degradations is None:
        degradations = (cfg.get("data", {}).get("val") or {}).get("degradations") or ["noise_25", "rain", "haze"]
    src = DS.build_source({"type": "skimage_samples", "split": "heldout", "degradations": list(degradations),
                           "seed": seed}, train=False)
    return evaluate_net(net, DS.EvalView(src, crop=crop), {"convention": "aio"})


def report(argv=None) -> int:
    import argparse
    import json

    from ..runtime import setup_runtime

    p = argparse.ArgumentParser(description="PSNR/SSIM of a checkpoint on the held-out scikit-image samples")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--config", required=True, help="training config (model.name / model.kwargs)")
    p.add_argument("--degradations", nargs="*", default=None)
    p.add_argument("--crop", type=int, default=None, help="centre crop (default: full images)")
    p.add_argument("--json", default=None, help="write the result here")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    args = p.parse_args(argv)
    setup_runtime("cpu", "graph", seed=0)
    res = heldout_report(args.ckpt, args.config, args.degradations, args.crop)
    print(f"{'degradation':<14} {'input PSNR':>10} {'output PSNR':>11} {'gain':>6} {'input SSIM':>10} "
          f"{'output SSIM':>11}")
    for g, r in res["groups"].items():
        print(f"{g:<14} {r['input_psnr']:10.2f} {r['psnr']:11.2f} {r['psnr'] - r['input_psnr']:6.2f} "
              f"{r['input_ssim']:10.4f} {r['ssim']:11.4f}")
    print(f"{'mean':<14} {res['input_psnr']:10.2f} {res['psnr']:11.2f} {res['psnr'] - res['input_psnr']:6.2f} "
          f"{res['input_ssim']:10.4f} {res['ssim']:11.4f}")
    if args.json:
        from ..fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, indent=1))
    return 0


def main(argv=None) -> int:
    from ..cli import run_cli

    return run_cli(report, argv)


if __name__ == "__main__":
    raise SystemExit(main())
