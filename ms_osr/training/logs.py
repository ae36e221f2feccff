"""CSV/JSONL training logs and a PNG plot of the loss and validation curves drawn with OpenCV."""
from __future__ import annotations

import csv
import json
import math
import os
from typing import Dict, List, Optional

import cv2
import numpy as np

from ..fileio import atomic_path

TRAIN_FIELDS = ["step", "epoch", "loss", "lr", "images_per_s", "elapsed_s"]


class TrainLog:
    """``train_log.csv`` (one row per ``log_every`` steps) and ``val_log.jsonl`` (one object per
    validation).  On resume, rows after the resumed step are dropped (they belong to work that
    the checkpoint does not contain) so the logs match the continued run exactly."""

    def __init__(self, out_dir: str, resume_step: Optional[int] = None, enabled: bool = True):
        self.enabled = enabled
        self.csv_path = os.path.join(out_dir, "train_log.csv")
        self.val_path = os.path.join(out_dir, "val_log.jsonl")
        self.rows: List[Dict] = []
        self.vals: List[Dict] = []
        if not enabled:
            return
        if resume_step is not None:
            self.rows = [r for r in _read_csv(self.csv_path) if int(r["step"]) <= resume_step]
            self.vals = [v for v in _read_jsonl(self.val_path) if int(v["step"]) <= resume_step]
        self._rewrite()

    def _rewrite(self) -> None:
        with atomic_path(self.csv_path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, TRAIN_FIELDS)
                w.writeheader()
                for r in self.rows:
                    w.writerow({k: r[k] for k in TRAIN_FIELDS})
        with atomic_path(self.val_path) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                for v in self.vals:
                    fh.write(json.dumps(v) + "\n")

    def log_train(self, row: Dict) -> None:
        if not self.enabled:
            return
        self.rows.append(row)
        with open(self.csv_path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, TRAIN_FIELDS).writerow({k: row[k] for k in TRAIN_FIELDS})

    def log_val(self, record: Dict) -> None:
        if not self.enabled:
            return
        self.vals.append(record)
        with open(self.val_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def plot(self, path: str) -> None:
        if self.enabled:
            plot_curves(self.rows, self.vals, path)


def _read_csv(path: str) -> List[Dict]:
    if not os.path.isfile(path):
        return []
    with open(path, "r", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r.get("step")]


def _read_jsonl(path: str) -> List[Dict]:
    if not os.path.isfile(path):
        return []
    out = []
    with open(path, "r", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a kill: ignore it
                    pass
    return out


def _panel(canvas, x0, y0, w, h, xs, ys, title, color, log_y=False):
    cv2.rectangle(canvas, (x0, y0), (x0 + w, y0 + h), (0, 0, 0), 1)
    cv2.putText(canvas, title, (x0 + 5, y0 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    pts = [(float(x), float(y)) for x, y in zip(xs, ys) if y is not None and math.isfinite(float(y))
           and (not log_y or float(y) > 0)]
    if not pts:
        cv2.putText(canvas, "no data yet", (x0 + w // 3, y0 + h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (120, 120, 120), 1)
        return
    px = np.array([p[0] for p in pts])
    py = np.array([p[1] for p in pts])
    if log_y:
        py = np.log10(py)
    xmin, xmax = px.min(), max(px.max(), px.min() + 1)
    ymin, ymax = py.min(), py.max()
    if ymax - ymin < 1e-12:
        ymin, ymax = ymin - 0.5, ymax + 0.5
    sx = (px - xmin) / (xmax - xmin) * (w - 20) + x0 + 10
    sy = y0 + h - 10 - (py - ymin) / (ymax - ymin) * (h - 20)
    poly = np.stack([sx, sy], 1).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [poly], False, color, 2, cv2.LINE_AA)
    if len(pts) < 30:
        for x, y in poly[:, 0]:
            cv2.circle(canvas, (int(x), int(y)), 3, color, -1)

    def fmt(v):
        return f"{10 ** v:.3g}" if log_y else f"{v:.4g}"

    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, fmt(ymax), (x0 + 3, y0 + 14), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.putText(canvas, fmt(ymin), (x0 + 3, y0 + h - 3), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.putText(canvas, f"step {int(xmin)}", (x0, y0 + h + 15), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.putText(canvas, f"{int(xmax)}", (x0 + w - 45, y0 + h + 15), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)


def plot_curves(rows: List[Dict], vals: List[Dict], path: str) -> None:
    """Loss (log scale) and validation PSNR/SSIM against the step, as a PNG (no matplotlib)."""
    hair = any(v.get("hsn_entropy") is not None for v in vals)  # Res-HAIR: selection and GIV panels
    w, h = 1200 + (780 if hair else 0), 420
    canvas = np.full((h, w, 3), 255, np.uint8)
    steps = [int(r["step"]) for r in rows]
    _panel(canvas, 40, 40, 340, 330, steps, [float(r["loss"]) for r in rows], "training loss (log)", (200, 60, 0),
           log_y=True)
    vsteps = [int(v["step"]) for v in vals]
    _panel(canvas, 430, 40, 340, 330, vsteps, [v.get("psnr") for v in vals], "validation PSNR (dB)", (0, 140, 0))
    _panel(canvas, 820, 40, 340, 330, vsteps, [v.get("ssim") for v in vals], "validation SSIM", (0, 0, 200))
    if hair:
        _panel(canvas, 1210, 40, 340, 330, vsteps, [v.get("hsn_entropy") for v in vals],
               "HSN selection entropy (1 = uniform)", (140, 0, 140))
        _panel(canvas, 1600, 40, 340, 330, vsteps, [v.get("giv_accuracy") for v in vals],
               "GIV nearest-centroid accuracy", (0, 120, 160))
    ok, buf = cv2.imencode(".png", canvas)
    if ok:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(buf.tobytes())
