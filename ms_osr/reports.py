"""What test.py prints and writes after an evaluation: per-image and average tables, metrics.csv/.json/.md,
and the closing list of problems (one ``error:`` line each)."""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .evaluation import EvalResult


def err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def write_each(writes, errors: list) -> None:
    """Run each ``(write_fn, path, args)`` on its own: a failure (full disk, folder gone) becomes one
    line in ``errors`` naming the file, and the smaller files after it may still fit."""
    for write, path, args in writes:
        try:
            write(path, *args)
        except OSError as exc:
            errors.append(f"{path}: not written ({exc.strerror or exc})")


def report(result: "EvalResult", out_dir: Optional[str], title: str, by: str = "",
           settings: Optional[dict] = None) -> None:
    """Print per-image and average tables; write metrics.csv/json/md to ``out_dir``."""
    from .evaluation import interval_columns
    from .tables import format_table, markdown_table, write_csv, write_json
    from .fileio import atomic_write_text

    metric_cols = result.metric_columns
    has_metrics = any(c in r for r in result.records for c in metric_cols)
    cols = (["image"] + (["group"] if by else []) + ["width", "height"] + (metric_cols if has_metrics else [])
            + ["time_s"])
    if result.records:
        print(format_table(result.records, cols, title=f"{title}: per image"))
    avg_rows = []
    if has_metrics:
        avg_rows = result.averages()
        if by:  # per group, then the overall mean in the same column
            avg_rows = result.averages(by) + [{by: r.pop("set"), **r} for r in avg_rows]
        shown = [c for c in metric_cols if "_in" not in c]  # intervals of the outputs; inputs are fixed
        avg_cols = [by or "set", "images"] + [k for c in metric_cols for k in
                                               ((c, f"{c}_lo", f"{c}_hi") if c in shown else (c,))]
        print()
        print(format_table(avg_rows, avg_cols, title=f"{title}: average [95% bootstrap CI over images]"))
    for note in result.notes:
        print(f"note: {note}")
    if out_dir and result.records:
        md = f"# {title}\n\n" + markdown_table(result.records, cols)
        if avg_rows:
            md += ("\n## Average (with 95% bootstrap CI over images)\n\n"
                   + markdown_table(avg_rows, [by or "set", "images"] + interval_columns(metric_cols)))
        write_each([(write_csv, os.path.join(out_dir, "metrics.csv"), (result.records, cols)),
                    (write_json, os.path.join(out_dir, "metrics.json"),
                     ({"title": title, "settings": settings or {}, "images": result.records, "average": avg_rows,
                       "errors": result.errors, "notes": result.notes},)),
                    (atomic_write_text, os.path.join(out_dir, "metrics.md"), (md,))], result.errors)
        written = sum(1 for r in result.records if "output" in r)
        print(f"\nwrote {written} restored images and metrics.csv/.json/.md to {out_dir}")


def finish(errors: list) -> int:
    if errors:
        print(f"\n{len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            err(e)
        return 1
    return 0
