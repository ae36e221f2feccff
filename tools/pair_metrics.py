#!/usr/bin/env python
"""Paired differences of two models evaluated apart: B - A from two test.py metrics.json files.

    python tools/pair_metrics.py runs/eval_a/metrics.json runs/eval_b/metrics.json
    python tools/pair_metrics.py a/metrics.json b/metrics.json --columns psnr offset --by group

``test.py --compare`` runs both models in one go; this reads two evaluations made separately (on the same
inputs: the same benchmark, degradations, seeds and crop) and prints the same table: per group and overall,
both means, the mean difference B - A with its 95% paired-bootstrap interval and how many photographs B won and
lost (seeds averaged per photograph first).  Inputs scored in only one file are left out and counted.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ms_osr.errors import EvaluationError  # noqa: E402
from ms_osr.evaluation import format_table, paired_columns, paired_rows, read_metrics_records  # noqa: E402


def pair_table(a_path: str, b_path: str, columns: Sequence[str] = ("psnr",), by: str = "group") -> List[str]:
    """The lines to print: a note on unmatched inputs (if any) and the paired table of ``columns``."""
    a, b = (read_metrics_records(p, ("image", by, *columns)) for p in (a_path, b_path))
    names_a, names_b = {str(r["image"]) for r in a}, {str(r["image"]) for r in b}
    if not names_a & names_b:
        raise EvaluationError(f"{a_path} and {b_path} score no input in common (another benchmark, degradations, "
                              "seeds or crop?)")
    lines = []
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
    ap.add_argument("a", help="metrics.json of model A")
    ap.add_argument("b", help="metrics.json of model B")
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
