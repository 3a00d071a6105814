"""Bootstrap confidence intervals of the attack metrics (percentile bootstrap, Efron 1979).

Members and non-members are resampled with replacement separately (stratified), so every
resample keeps the evaluation set's class sizes. The interval is the ((1 - level) / 2,
(1 + level) / 2) quantile pair of the resampled values, reported as computed: it is *not*
widened to contain the point estimate (for skewed statistics such as TPR at 0.1% FPR the point
may lie outside; stretching the interval would change its coverage).
tests/metrics/test_calibration.py checks the coverage of the AUC interval on synthetic scores
with a known AUC.

Calibrated decisions (thresholds chosen on a shadow model, metrics/calibration.py) get an
interval too: the thresholds stay fixed and the target's decisions are resampled, i.e. the
interval covers the evaluation-sampling uncertainty of ``acc_calibrated`` given the shadow.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lit_mia.errors import ConfigError
from lit_mia.metrics.roc import _roc_counts, check_scores

BOOTSTRAP_METRICS = ("auc",)
"""Metrics that get bootstrap confidence intervals in attack_metrics (plus ``acc_calibrated``
when calibrated decisions are given). Not the oracle ``acc_best`` / ``advantage_best``: a
bootstrap of a maximum over thresholds is biased upwards (its lower end exceeds 0.5 in 98% of
no-signal evaluations); their sound replacements are ``acc_heldout`` / ``advantage_heldout``
(metrics/heldout.py). Not TPR at low FPR either: the bootstrap covers TPR@0.1% only 72-90% of
the time; ``tpr_interval`` gives an exact Clopper-Pearson interval at a held-out threshold."""


def point_metrics(s: np.ndarray, m: np.ndarray) -> dict[str, float]:
    """BOOTSTRAP_METRICS of one (re)sample, from one shared ROC pass."""
    _, tp, fp = _roc_counts(s, m)
    n_pos, n_neg = float(tp[-1]), float(fp[-1])
    return {"auc": float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]))) / (2.0 * n_pos * n_neg)}


def _balanced_acc(d: np.ndarray, m: np.ndarray) -> float:
    return 0.5 * (float(d[m].mean()) + 1.0 - float(d[~m].mean()))


def bootstrap_ci(
    scores: ArrayLike,
    is_member: ArrayLike,
    n_resamples: int = 200,
    level: float = 0.95,
    seed: int = 0,
    decisions: ArrayLike | None = None,
) -> dict[str, float]:
    """Percentile-bootstrap CIs ``<metric>_ci_low`` / ``<metric>_ci_high`` of BOOTSTRAP_METRICS
    (see the module docstring); with ``decisions`` (bool member decision per sample, fixed
    calibrated thresholds) also ``acc_calibrated_ci_low`` / ``_ci_high``."""
    if int(n_resamples) < 2:
        raise ConfigError(f"bootstrap resamples must be >= 2, got {n_resamples}")
    if not 0.0 < float(level) < 1.0:
        raise ConfigError(f"CI level must be in (0, 1), got {level}")
    s, m = check_scores(scores, is_member)
    d = None
    if decisions is not None:
        d = np.asarray(decisions, dtype=bool).reshape(-1)
        if d.shape != s.shape:
            raise ConfigError(f"decisions and scores differ in length: {d.size} vs {s.size}")
    pos, neg = np.flatnonzero(m), np.flatnonzero(~m)
    rng = np.random.default_rng(seed)
    lab = np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)]
    draws: dict[str, list[float]] = {k: [] for k in BOOTSTRAP_METRICS}
    if d is not None:
        draws["acc_calibrated"] = []
    for _ in range(int(n_resamples)):
        idx = np.r_[
            pos[rng.integers(0, pos.size, pos.size)], neg[rng.integers(0, neg.size, neg.size)]
        ]
        for k, v in point_metrics(s[idx], lab).items():
            draws[k].append(v)
        if d is not None:
            draws["acc_calibrated"].append(_balanced_acc(d[idx], lab))
    q = ((1.0 - level) / 2.0, (1.0 + level) / 2.0)
    out: dict[str, float] = {}
    for k, vals in draws.items():
        lo, hi = np.quantile(np.asarray(vals), q)
        out[f"{k}_ci_low"] = float(lo)
        out[f"{k}_ci_high"] = float(hi)
    return out


def ratio_of_means_ci(
    num: ArrayLike, den: ArrayLike, n_resamples: int = 200, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Paired percentile-bootstrap interval of mean(num) / mean(den): items (e.g. update sets,
    each with the attack's and a baseline's error) are resampled with replacement, their two
    values together, so the correlation between attack and baseline is kept. Used for A_LDE's
    KL ratio to a baseline and A_MSR's MSE gain (1 - ratio) over one; coverage checked in
    tests/metrics/test_intervals_ratio.py."""
    a = np.asarray(num, dtype=np.float64).reshape(-1)
    b = np.asarray(den, dtype=np.float64).reshape(-1)
    if a.shape != b.shape or a.size < 2:
        raise ConfigError(
            f"ratio_of_means_ci needs two equal-length samples >= 2, got {a.size}, {b.size}"
        )
    if int(n_resamples) < 2:
        raise ConfigError(f"bootstrap resamples must be >= 2, got {n_resamples}")
    if not 0.0 < float(level) < 1.0:
        raise ConfigError(f"CI level must be in (0, 1), got {level}")
    idx = np.random.default_rng(seed).integers(0, a.size, (int(n_resamples), a.size))
    ratios = a[idx].mean(1) / b[idx].mean(1)
    lo, hi = np.quantile(ratios, ((1.0 - level) / 2.0, (1.0 + level) / 2.0))
    return float(lo), float(hi)


__all__ = ["BOOTSTRAP_METRICS", "bootstrap_ci", "point_metrics", "ratio_of_means_ci"]
