#!/usr/bin/env python
"""Does a model restore light and heavy degradations alike?  Gain over the input, split by the input's PSNR.

    python tools/severity_split.py results/photos/metrics.json
    python tools/severity_split.py a/metrics.json b/metrics.json --groups rain haze --at 25

Reads the per-image records of ``test.py --benchmark photos`` (``metrics.json``) and, per degradation group,
splits the inputs at ``--at`` dB of input PSNR (default: the group's median, so both halves hold the same number
of inputs) into light (input PSNR at or above the split) and heavy ones.  For each half it prints the mean input
PSNR, the mean gain over the input, how many inputs the model made worse, and the mean signed colour offset
(output minus ground truth, grey levels); for the whole group the Spearman correlation between input PSNR and
gain.  A model that estimates how strong the degradation is tends to gain on both halves; one that applies about
the same correction to every input under-corrects heavy inputs (positive offsets for rain and haze, which
brighten) and over-corrects light ones (negative offsets, inputs made worse).

Each input counts once (every photo x seed), so the halves mix photos and seeds: the figures describe these
inputs; they carry no confidence interval.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ms_osr.errors import EvaluationError  # noqa: E402
from ms_osr.evaluation import read_metrics_records  # noqa: E402


def split_rows(records: Sequence[Dict], group: str, at: Optional[float] = None) -> List[Dict[str, object]]:
    """Light / heavy / all rows of one group: inputs, split, mean input PSNR, gain, inputs worse, offset."""
    rs = [r for r in records if r["group"] == group]
    x = np.array([float(r["psnr_in"]) for r in rs])
    gain = np.array([float(r["psnr"]) for r in rs]) - x
    offset = np.array([float(r["offset"]) for r in rs])
    split = float(np.median(x)) if at is None else float(at)
    rows = []
    for label, mask in (("light", x >= split), ("heavy", x < split), ("all", np.ones_like(x, bool))):
        n = int(mask.sum())
        row: Dict[str, object] = {"group": group, "inputs": label, "n": n, "split_db": split}
        if n:
            row.update(psnr_in=float(x[mask].mean()), gain=float(gain[mask].mean()),
                       worse=int((gain[mask] < 0).sum()), offset=float(offset[mask].mean()))
        rows.append(row)
    if len(x) > 2:
        rows[-1]["spearman"] = float(spearmanr(x, gain).statistic)
    return rows


def format_row(row: Dict[str, object]) -> str:
    if not row["n"]:
        return f"  {row['inputs']:>5}: no inputs"
    text = (f"  {row['inputs']:>5}: n {row['n']:>3}  input {row['psnr_in']:6.2f} dB  gain {row['gain']:+6.2f} dB  "
            f"worse {row['worse']:>3}/{row['n']:<3}  offset {row['offset']:+6.1f}")
    if "spearman" in row:
        text += f"  Spearman(input PSNR, gain) {row['spearman']:+.2f}"
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("metrics", nargs="+", help="test.py metrics.json files")
    ap.add_argument("--groups", nargs="+", help="degradation groups (default: every group in the first file)")
    ap.add_argument("--at", type=float, help="split at this input PSNR in dB (default: each group's median)")
    args = ap.parse_args(argv)
    try:
        tables = [(path, read_metrics_records(path)) for path in args.metrics]
    except EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    groups = args.groups or list(dict.fromkeys(r["group"] for r in tables[0][1]))
    for path, records in tables:
        print(path)
        for group in groups:
            if not any(r["group"] == group for r in records):
                print(f" {group}: no inputs in {path}")
                continue
            rows = split_rows(records, group, args.at)
            print(f" {group} (split at {rows[0]['split_db']:.2f} dB input PSNR)")
            for row in rows:
                print(format_row(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
