"""The 95% interval of a claim's statistic, from what the runs logged (pure functions).

A statistic is one metric or the difference a - b of two. Its interval comes from:

- `bootstrap`: the metric's own `<key>_ci_low` / `<key>_ci_high` (metrics/intervals.py: the
  stratified percentile bootstrap every score attack logs). For a difference of two AUCs or
  two TPRs at a fixed FPR whose attacks scored **the same samples in the same roles** (two
  attacks on one target, or two targets on one split), the paired interval from the
  per-sample scores each run logs as `scores/<attack>.csv` (`paired_difference`): DeLong's
  paired variance for ΔAUC, the paired stratified bootstrap for ΔTPR (metrics/paired.py).
  Otherwise (different samples, e.g. targets trained on different member counts, or no score
  files) each side's standard error is read off its interval, se = (high - low) / (2 z), and
  the two are combined as independent: d ± z sqrt(se_a² + se_b²) (`difference_interval`).
- `binomial`: a proportion of n trials (n from the run's config, e.g. `updates.m_target`):
  the Wilson score interval; a difference combines the two Wald standard errors as above.
- `paired_z`: a difference whose paired z statistic the attack logged (mean paired difference
  over its standard error, e.g. A_SSR's `z_class_mean`): d ± z_{0.975} |d / z_logged|.

The independent combination ignores the covariance of two metrics measured on the same
samples: those are usually positively correlated, and then it is wider than the paired
interval (conservative), which is why it is used only where the samples differ. The paired
form was named here as the replacement before the first CPU-tier run, and replaced it once
metrics/paired.py landed (docs/howto/reproduce.md says which run used which).
tests/reproduce/test_intervals.py checks coverage by simulation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


def wilson(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion p observed in n trials (Wilson 1927)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    den = 1.0 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half


def se_from_interval(low: float, high: float, z: float = Z95) -> float:
    """The standard error a symmetric normal 95% interval [low, high] implies."""
    return (high - low) / (2.0 * z)


def difference_interval(
    a: float, se_a: float, b: float, se_b: float, z: float = Z95
) -> tuple[float, float]:
    """Interval of a - b from the two standard errors, combined as independent (see the module
    docstring: conservative for positively correlated metrics; the seam for a paired test)."""
    d, se = a - b, math.hypot(se_a, se_b)
    return d - z * se, d + z * se


def scored_key(key: str) -> tuple[str, str] | None:
    """("ia", "auc") for `attack/ia/auc`, ("lira", "tpr_at_fpr_0.01") for its TPR key; None
    for any other metric (no per-sample form of it to pair)."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "attack":
        return None
    if parts[2] == "auc" or parts[2].startswith("tpr_at_fpr_"):
        return parts[1], parts[2]
    return None


def paired_difference(
    metric: str,
    a: tuple[ArrayLike, ArrayLike, ArrayLike],
    b: tuple[ArrayLike, ArrayLike, ArrayLike],
) -> tuple[float, float, float, int, int] | None:
    """(d, low, high, n_members, n_nonmembers) of metric_a - metric_b from the two per-sample
    score sets (index, is_member, score), or None when they do not cover the same samples in
    the same roles (then they cannot be paired). metric: "auc" (DeLong) or "tpr_at_fpr_<f>"
    (paired stratified bootstrap, metrics/paired.py)."""
    from lit_mia.metrics.paired import align, paired_comparison

    ia, ma, sa = a
    ib, mb, sb = b
    n = len(np.asarray(sa))
    if n != len(np.asarray(sb)):
        return None
    xb, xa, m = align(ib, mb, sb, ia, ma, sa)  # reference = b: paired_comparison gives a - b
    if len(m) != n or m.all() or not m.any():
        return None
    if metric == "auc":
        r = paired_comparison(xb, xa, m)
        key = "delta_auc"
    else:
        fpr = float(metric[len("tpr_at_fpr_") :])
        r = paired_comparison(xb, xa, m, fpr=fpr)
        key = f"delta_tpr_at_fpr_{fpr}"
    return r[key], r[f"{key}_ci_low"], r[f"{key}_ci_high"], int(m.sum()), int((~m).sum())


def paired_z_interval(d: float, z_logged: float, z: float = Z95) -> tuple[float, float]:
    """Interval of a mean paired difference d whose z statistic d / se was logged."""
    if z_logged == 0 or not math.isfinite(z_logged):
        return -math.inf, math.inf
    se = abs(d / z_logged)
    return d - z * se, d + z * se


def bootstrap_side(metrics: Mapping[str, float], key: str) -> tuple[float, float, float]:
    """(value, low, high) of a metric with logged bootstrap interval keys."""
    lo, hi = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    if lo is None or hi is None:
        raise KeyError(f"{key} has no logged interval ({key}_ci_low / _ci_high)")
    return metrics[key], lo, hi


def binomial_side(p: float, n: int) -> tuple[float, float, float]:
    lo, hi = wilson(p, n)
    return p, lo, hi


def wald_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n)


__all__ = [
    "Z95",
    "binomial_side",
    "bootstrap_side",
    "difference_interval",
    "paired_difference",
    "paired_z_interval",
    "scored_key",
    "se_from_interval",
    "wald_se",
    "wilson",
]
