#!/usr/bin/env python
"""Paired differences of two models evaluated apart: B - A from two test.py metrics.json files.

    python tools/pair_metrics.py runs/eval_a/metrics.json runs/eval_b/metrics.json
    python tools/pair_metrics.py a/metrics.json b/metrics.json --columns psnr offset --by group
    python tools/pair_metrics.py a0/metrics.json,a1/metrics.json,a2/metrics.json b0/metrics.json,b1/...,b2/...

``test.py --compare`` runs both models in one go; this reads two evaluations made separately (on the same
inputs: the same benchmark, degradations, seeds and crop) and prints the same table: per group and overall,
both means, the mean difference B - A with its 95% paired-bootstrap interval and how many photographs B won and
lost (seeds averaged per photograph first).  Inputs scored in only one file are left out and counted.

A side given as several files joined by commas is one recipe trained several times (e.g. three training seeds):
its runs are averaged per input before pairing, so the interval is over photographs of the recipes' mean models.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ms_osr.errors import EvaluationError  # noqa: E402
from ms_osr.evaluation import format_table, paired_columns, paired_rows, read_metrics_records  # noqa: E402


def read_side(spec: str, columns: Sequence[str], by: str, lines: List[str]) -> List[Dict[str, object]]:
    """The records of one side: a metrics.json, or several joined by commas (runs of one recipe) averaged per
    input over ``columns``; inputs not scored by every run are left out and counted in ``lines``."""
    runs = [read_metrics_records(p, ("image", by, *columns)) for p in spec.split(",") if p]
    if not runs:
        raise EvaluationError(f"'{spec}': no metrics.json named")
    if len(runs) == 1:
        return runs[0]
    by_image = [{str(r["image"]): r for r in run} for run in runs]
    shared = set.intersection(*(set(m) for m in by_image))
    if not shared:
        raise EvaluationError(f"{spec}: its runs score no input in common")
    left_out = len(set.union(*(set(m) for m in by_image)) - shared)
    if left_out:
        lines.append(f"note: {left_out} input(s) not scored by every run of {spec} are left out")
    return [dict(r, **{c: sum(float(m[str(r["image"])][c]) for m in by_image) / len(runs) for c in columns})
            for r in runs[0] if str(r["image"]) in shared]


def pair_table(a_path: str, b_path: str, columns: Sequence[str] = ("psnr",), by: str = "group") -> List[str]:
    """The lines to print: notes on unmatched inputs (if any) and the paired table of ``columns``; a path may be
    several metrics.json joined by commas (:func:`read_side`)."""
    lines: List[str] = []
    a, b = (read_side(p, columns, by, lines) for p in (a_path, b_path))
    names_a, names_b = {str(r["image"]) for r in a}, {str(r["image"]) for r in b}
    if not names_a & names_b:
        raise EvaluationError(f"{a_path} and {b_path} score no input in common (another benchmark, degradations, "
                              "seeds or crop?)")
    if names_a != names_b:
        lines.append(f"note: {len(names_a - names_b)} input(s) only in A and {len(names_b - names_a)} only in B "
                     "are left out")
    rows = paired_rows(a, b, columns, by, labels=("A", "B"))
    show = paired_columns(columns, by)
    title = (f"paired difference B - A (A = {a_path}, B = {b_path}); 95% paired-bootstrap CI over photographs; "
             "won/lost = photographs where B is higher/lower")
    lines.append(format_table(rows, show, title=title))
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="metrics.json of model A (several joined by commas: runs of one recipe, averaged)")
    ap.add_argument("b", help="metrics.json of model B (likewise)")
    ap.add_argument("--columns", nargs="+", default=["psnr"], help="per-image columns to pair (default: psnr)")
    ap.add_argument("--by", default="group", help="record key to split by (default: group, the degradation)")
    args = ap.parse_args(argv)
    try:
        lines = pair_table(args.a, args.b, args.columns, args.by)
    except EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
