"""Evaluation sets for test.py from the same sources training uses: a config's ``data.val`` under a given
``data.root``, or list files (``degraded clean`` per line, or the OSR release's two one-path-per-line files).
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

from .config import load_config
from .data import datasets as DS
from .data.layouts import list_pair, prepare_data_config, reroot
from .errors import EvaluationError
from .samples import source_samples  # noqa: F401  (moved to ms_osr.samples; re-exported)


def config_val_source(config: str, data_root: Optional[str] = None) -> Tuple[DS.Source, Dict]:
    """The validation source of a training config, with ``data.root`` replaced by ``data_root`` when given."""
    data = dict(load_config(config).get("data") or {})
    if data_root:
        data["root"] = data_root
    data = prepare_data_config(data)
    if not data.get("val"):
        raise EvaluationError(f"{config}: no data.val to evaluate")
    return DS.build_source(data["val"], train=False), data["val"]


def list_source(input_list: str, gt_list: Optional[str] = None, data_root: Optional[str] = None) -> DS.Source:
    """Pairs from list files: ``input_list`` with ``degraded clean`` per line, or ``input_list`` + ``gt_list``
    with one path per line each (paired by line).  Relative paths are taken from ``data_root`` (default: the
    list's folder); absolute ones that do not exist are re-rooted under ``data_root``."""
    if gt_list:
        cfg = {"input_list": input_list, "gt_list": gt_list}
        if data_root:
            cfg["image_root"] = data_root
        return list_pair(cfg, train=False)
    pairs = DS.read_list_file(input_list, data_root)
    base = data_root or os.path.dirname(os.path.abspath(input_list))
    lq, gt = reroot([p[0] for p in pairs], base), reroot([p[1] for p in pairs], base)
    return DS.PairedFiles(list(zip(lq, gt)), label=input_list)
