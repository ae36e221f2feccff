"""Confidence intervals for evaluation reports: means over images, paired differences, seeds.

The unit of resampling is the image: a test set of n photographs is a sample of the photographs a
user might give, so a 95% bootstrap interval over images says how far the mean could move on
another set like it.  Several degradation seeds of the same image are not independent samples:
they are averaged per image first (seeds are a factor, not extra images), and per-seed means are
reported beside the pooled figure.

Resampling is SciPy's ``scipy.stats.bootstrap`` (BCa by default) with a fixed random state, so a
report is reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 9999
RANDOM_STATE = 0


@dataclass(frozen=True)
class Estimate:
    """A mean with its bootstrap interval over ``n`` units (images)."""

    mean: float
    low: float
    high: float
    n: int

    def text(self, digits: int = 2) -> str:
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``a - b`` over paired units, its interval, and how many units ``a`` won / lost / tied."""

    diff: Estimate
    wins: int
    losses: int
    ties: int

    def text(self, digits: int = 2) -> str:
        return f"{self.diff.mean:+.{digits}f} [{self.diff.low:+.{digits}f}, {self.diff.high:+.{digits}f}]" \
               f" (won {self.wins}, lost {self.losses}" + (f", tied {self.ties})" if self.ties else ")")


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
            method: str = "BCa", random_state: int = RANDOM_STATE) -> Estimate:
    """Mean and bootstrap ``confidence`` interval of ``values`` (NaNs are an error, not dropped).

    One value gives a zero-width interval (nothing to resample); identical values too."""
    x = np.asarray(values, np.float64).ravel()
    if x.size == 0:
        raise ValueError("mean_ci: no values")
    if not np.all(np.isfinite(x)):
        raise ValueError("mean_ci: values must be finite (an infinite PSNR means identical images; cap it first)")
    m = float(x.mean())
    if x.size == 1 or np.ptp(x) == 0:
        return Estimate(m, m, m, int(x.size))
    from scipy.stats import bootstrap

    res = bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method=method,
                    random_state=np.random.default_rng(random_state), vectorized=True)
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa can degenerate on tiny samples
        res = bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                        method="percentile", random_state=np.random.default_rng(random_state), vectorized=True)
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Estimate(m, lo, hi, int(x.size))


def paired_difference(a: Sequence[float], b: Sequence[float], tie: float = 0.0, **kw) -> PairedDifference:
    """``a - b`` per unit (same images, same degraded inputs): mean, paired bootstrap interval
    (resampling units, so the pairing is kept), and won / lost / tied counts (|a - b| <= ``tie``)."""
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired_difference: {x.size} values against {y.size}; the pairs must match")
    d = x - y
    return PairedDifference(mean_ci(d, **kw), int(np.sum(d > tie)), int(np.sum(d < -tie)),
                            int(np.sum(np.abs(d) <= tie)))


def per_unit_means(rows: Sequence[Mapping[str, object]], value: str, unit: str = "image",
                   factor: str = "seed") -> Tuple[List[str], np.ndarray, Dict[str, float]]:
    """Average ``value`` over the levels of ``factor`` (e.g. seeds) within each ``unit`` (image);
    several rows of one unit and level (the same photo under several degradations) are averaged.

    Returns ``(units, means, per_factor_mean)``: the unit names in first-seen order, their means
    across factor levels, and the mean over units for each factor level.  Every unit must have
    every level (a missing one would bias the pooled mean), else ValueError naming it."""
    levels: List[str] = []
    cells: Dict[str, Dict[str, List[float]]] = {}
    for r in rows:
        if r.get(value) is None:
            continue
        u, f = str(r[unit]), str(r.get(factor, ""))
        if f not in levels:
            levels.append(f)
        cells.setdefault(u, {}).setdefault(f, []).append(float(r[value]))  # type: ignore[arg-type]
    for u, vals in cells.items():
        missing = [f for f in levels if f not in vals]
        if missing:
            raise ValueError(f"{unit} '{u}' has no {value} for {factor} {', '.join(missing)}")
    # several rows of one unit and level (e.g. one photo under several degradations) are averaged
    table = {u: {f: float(np.mean(v)) for f, v in vals.items()} for u, vals in cells.items()}
    units = list(table)
    means = np.array([np.mean([table[u][f] for f in levels]) for u in units], np.float64)
    per_level = {f: float(np.mean([table[u][f] for u in units])) for f in levels}
    return units, means, per_level


def cap_psnr(values: Sequence[float], cap: float = 100.0) -> np.ndarray:
    """Replace infinite PSNR (identical images) by ``cap`` so means and intervals stay finite."""
    x = np.asarray(values, np.float64)
    return np.where(np.isposinf(x), cap, x)


def summarise(rows: Sequence[Mapping[str, object]], value: str, unit: str = "image", factor: Optional[str] = None,
              **kw) -> Dict[str, object]:
    """Mean, interval and (with ``factor``) per-level means of ``value`` over ``rows``."""
    if factor:
        units, means, per_level = per_unit_means(rows, value, unit, factor)
    else:
        means = np.array([float(r[value]) for r in rows if r.get(value) is not None])  # type: ignore[arg-type]
        per_level = {}
    est = mean_ci(cap_psnr(means) if "psnr" in value else means, **kw)
    out: Dict[str, object] = {"mean": est.mean, "ci_low": est.low, "ci_high": est.high, "n": est.n}
    if per_level:
        out["per_" + str(factor)] = per_level
    return out
