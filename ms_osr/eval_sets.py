"""Evaluation sets for test.py from the same sources training uses: a config's ``data.val`` under a given
``data.root``, or list files (``degraded clean`` per line, or the OSR release's two one-path-per-line files).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from .config import load_config
from .data import datasets as DS
from .data.layouts import list_pair, prepare_data_config, reroot
from .errors import EvaluationError
from .samples import Sample


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


def source_samples(src: DS.Source, crop_multiple: int = 0, crop: Optional[int] = None) -> List[Sample]:
    """One :class:`Sample` per item (name ``<stem>``, ``group`` the part after ``__`` such as ``sigma25``), loaded
    through the :class:`~ms_osr.data.datasets.EvalView` that training validates with (``crop``: centre crop,
    ``crop_multiple``: the all-in-one protocol's crop to a multiple of 16), so test.py scores what train.py did."""
    view = DS.EvalView(src, crop=crop, crop_multiple=crop_multiple)
    names = [src.name(i) for i in range(len(src))]
    seen: Dict[str, int] = {}
    samples = []
    for i, raw in enumerate(names):
        stem, _, group = os.path.splitext(raw)[0].partition("__")
        name = f"{stem}_{group}" if group else stem
        if name in seen:  # frame names repeat across scenes/sequences: keep outputs apart
            name = f"{name}_{i:04d}"
        seen[name] = i

        def load(i=i):
            lq, gt, _ = view.get(i)
            return lq, gt

        samples.append(Sample(name, load, _files(src, i), group=group))
    return samples


def _files(src: DS.Source, index: int) -> Tuple[str, ...]:
    """Files item ``index`` reads (outputs must never overwrite them)."""
    if isinstance(src, DS.Concat):
        part, i = src._locate(index)
        return _files(part, i)
    if isinstance(src, DS.PairedFiles):
        return tuple(src.pairs[index])
    if isinstance(src, DS.SyntheticPairs):
        item = src.clean[index // len(src.specs)]
        return (item,) if isinstance(item, str) else ()
    return ()
