"""Validation: run a network on an :class:`~ms_osr.data.datasets.EvalView` and score PSNR/SSIM."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, Optional

import numpy as np

from ..metrics import calculate_psnr, calculate_ssim


def restore(net, lq: np.ndarray) -> np.ndarray:
    """HxWx3 [0,1] -> restored HxWx3 [0,1] (batch of one, output clipped)."""
    from mindspore import Tensor

    x = Tensor(np.ascontiguousarray(lq.transpose(2, 0, 1)[None], np.float32))
    out = net(x)
    if isinstance(out, (tuple, list)):
        out = out[-1]
    return np.clip(out.asnumpy()[0].transpose(1, 2, 0), 0.0, 1.0)


def evaluate_net(net, view, metrics: Optional[Dict] = None) -> Dict:
    """Mean PSNR/SSIM of the restored and of the degraded input over ``view``; also per
    degradation (the part of the sample name after ``__``) in ``groups``."""
    mc = dict(metrics or {})
    kw = dict(crop_border=int(mc.get("crop_border", 0)), test_y_channel=bool(mc.get("test_y_channel", False)),
              convention=mc.get("convention", "aio"))
    net.set_train(False)
    items = []
    for lq, gt, name in view:
        out = restore(net, lq)
        items.append({"name": name, "psnr": calculate_psnr(out, gt, **kw), "ssim": calculate_ssim(out, gt, **kw),
                      "input_psnr": calculate_psnr(lq, gt, **kw), "input_ssim": calculate_ssim(lq, gt, **kw)})
    if not items:
        raise ValueError("validation set is empty")
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
