"""Tables and files of evaluation results: console and Markdown tables, CSV/JSON writers, and the labelled
comparison grid of the demo.  Formatting only: nothing here restores or scores."""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .data.io import to_uint8
from .fileio import atomic_write_text




def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}f}"
    return str(value)


def _digits(col: str) -> int:
    col = col.lower()
    return 4 if "ssim" in col else (3 if col.endswith("_s") else 2)


def format_table(rows: Sequence[Dict[str, object]], columns: Sequence[str], title: str = "") -> str:
    """Plain-text table for the console (right-aligned numbers)."""
    cells = [[_fmt(r.get(c), _digits(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = [title] if title else []
    lines.append("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def markdown_table(rows: Sequence[Dict[str, object]], columns: Sequence[str], digits: Optional[int] = None) -> str:
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_fmt(r.get(c), digits or _digits(c)) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep] + body) + "\n"


def write_csv(path: str, rows: Sequence[Dict[str, object]], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in columns})
    atomic_write_text(path, buf.getvalue())


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return None if math.isnan(v) else (str(v) if math.isinf(v) else v)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2) + "\n")


# --------------------------------------------------------------------------------------
# Comparison grid
# --------------------------------------------------------------------------------------


def _label_strip(text: str, width: int, height: int = 22) -> np.ndarray:
    import cv2

    strip = np.zeros((height, width, 3), np.uint8)
    scale = 0.45
    (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    while tw > width - 6 and scale > 0.25:  # shrink long labels to fit the cell
        scale -= 0.05
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.putText(strip, text, (3, height - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return strip


def comparison_grid(rows: Sequence[Sequence[Tuple[str, Optional[np.ndarray]]]], cell: int = 256,
                    gap: int = 4) -> np.ndarray:
    """Grid of labelled images (uint8 HxWx3 RGB): one row per list of ``(label, image)``.

    Images are resized to ``cell`` pixels on the longer side; ``None`` leaves a grey cell.
    """
    import cv2

    def fit(img):
        h, w = img.shape[:2]
        s = cell / float(max(h, w))
        size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
        small = cv2.resize(to_uint8(img), size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_NEAREST)
        canvas = np.full((cell, cell, 3), 32, np.uint8)
        y0, x0 = (cell - size[1]) // 2, (cell - size[0]) // 2
        canvas[y0:y0 + size[1], x0:x0 + size[0]] = small
        return canvas

    ncol = max(len(r) for r in rows)
    label_h = 22
    H = len(rows) * (cell + label_h) + (len(rows) + 1) * gap
    W = ncol * cell + (ncol + 1) * gap
    grid = np.full((H, W, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        y = gap + i * (cell + label_h + gap)
        for j, (label, img) in enumerate(row):
            x = gap + j * (cell + gap)
            grid[y:y + label_h, x:x + cell] = _label_strip(label, cell, label_h)
            grid[y + label_h:y + label_h + cell, x:x + cell] = fit(img) if img is not None else 128
    return grid
