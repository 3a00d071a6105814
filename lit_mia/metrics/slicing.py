"""Membership metrics per slice of the evaluation set (TensorFlow Privacy's SlicingSpec:
per true class and per correctly / incorrectly classified sample; Song & Mittal 2021 §4 show
that leakage differs strongly between classes).

A slice is a boolean mask over the evaluation samples; the attack's scores are *not*
recomputed, the metrics of the samples inside the slice are (AUC, balanced accuracy at the
oracle threshold, TPR at 1% FPR; a percentile-bootstrap CI for the AUC only,
metrics/intervals.py: a bootstrap of the oracle accuracy, a maximum over thresholds, would be
biased upwards). A slice
with fewer than ``min_size`` members or non-members is reported as too small (``too_small`` =
1 and its counts), never as numbers: an AUC on a handful of samples is noise.

Keys (prefix ``attack/<name>/`` when logged): ``slice/<slice>/{auc, acc_best, tpr_at_fpr_0.01,
n_members, n_nonmembers}``, ``auc_ci_low`` / ``auc_ci_high`` with bootstrap, or
``slice/<slice>/too_small``. Slice names: ``class_<c>``, ``correct``, ``incorrect``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lit_mia.errors import ConfigError, unknown_name
from lit_mia.metrics.intervals import BOOTSTRAP_METRICS, bootstrap_ci
from lit_mia.metrics.roc import best_threshold, check_scores, roc_auc, tpr_at_fpr

SLICE_KINDS = ("class", "correctness")
SLICE_METRICS = ("auc", "acc_best", "tpr_at_fpr_0.01")
MIN_SLICE = 20
"""Default minimum of members and of non-members in a slice for it to get numbers."""


def check_labels(labels: ArrayLike | None, n: int) -> np.ndarray:
    """Labels as int64 [n]; ConfigError for a dataset without labels (None, or negative /
    non-integer values, the convention for unlabelled samples)."""
    if labels is None:
        raise ConfigError(
            "attack.slicing=[class, ...] needs a dataset with labels; this one has none "
            "(use attack.slicing=[])"
        )
    lab = np.asarray(labels)
    if lab.shape != (n,):
        raise ConfigError(f"slice labels must have shape ({n},), got {lab.shape}")
    if lab.dtype.kind not in "iub" or (lab.size and lab.min() < 0):
        raise ConfigError(
            "attack.slicing=[class, ...] needs a dataset with integer labels >= 0; this one has "
            "unlabelled samples (use attack.slicing=[])"
        )
    return lab.astype(np.int64)


def slice_masks(
    kinds: list[str] | tuple[str, ...],
    labels: ArrayLike | None = None,
    correct: ArrayLike | None = None,
    n: int | None = None,
) -> dict[str, np.ndarray]:
    """Slice name -> bool mask for the requested kinds (SLICE_KINDS): ``class`` -> one slice
    per class present (``class_<c>``, needs ``labels``), ``correctness`` -> ``correct`` and
    ``incorrect`` (needs ``correct``: whether the target classifies each sample right)."""
    out: dict[str, np.ndarray] = {}
    for kind in kinds:
        if kind not in SLICE_KINDS:
            raise unknown_name("slice kind (attack.slicing)", kind, SLICE_KINDS)
        if kind == "class":
            size = n if n is not None else (None if labels is None else len(labels))
            lab = check_labels(labels, int(size or 0))
            for c in np.unique(lab):
                out[f"class_{int(c)}"] = lab == c
        else:
            if correct is None:
                raise ConfigError("attack.slicing=[correctness] needs the target's predictions")
            ok = np.asarray(correct, dtype=bool)
            out["correct"], out["incorrect"] = ok, ~ok
    return out


def slice_metrics(
    scores: ArrayLike,
    is_member: ArrayLike,
    slices: dict[str, np.ndarray],
    min_size: int = MIN_SLICE,
    bootstrap: int = 0,
    ci_level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """The module docstring's keys for every slice (pure; scores and is_member as in
    metrics.attack_metrics)."""
    if int(min_size) < 1:
        raise ConfigError(f"attack.slice_min must be >= 1, got {min_size}")
    s, m = check_scores(scores, is_member)
    out: dict[str, float] = {}
    for name, mask in slices.items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != s.shape:
            raise ConfigError(f"slice {name}: mask of shape {mask.shape}, scores {s.shape}")
        n_in, n_out = int((mask & m).sum()), int((mask & ~m).sum())
        key = f"slice/{name}"
        out[f"{key}/n_members"] = float(n_in)
        out[f"{key}/n_nonmembers"] = float(n_out)
        if min(n_in, n_out) < min_size:
            out[f"{key}/too_small"] = 1.0
            continue
        ss, sm = s[mask], m[mask]
        out[f"{key}/auc"] = roc_auc(ss, sm)
        out[f"{key}/acc_best"] = best_threshold(ss, sm)[1]
        out[f"{key}/tpr_at_fpr_0.01"] = tpr_at_fpr(ss, sm, 0.01)
        if bootstrap:
            ci = bootstrap_ci(ss, sm, bootstrap, level=ci_level, seed=seed)
            for k in BOOTSTRAP_METRICS:
                out[f"{key}/{k}_ci_low"] = ci[f"{k}_ci_low"]
                out[f"{key}/{k}_ci_high"] = ci[f"{k}_ci_high"]
    return out


def slice_table(metrics: dict[str, float]) -> list[tuple[str, float | None, float, float]]:
    """(slice, auc or None when too small, ci_low, ci_high) rows from slice_metrics' output,
    in the order the slices were given (for plots and reports)."""
    names: list[str] = []
    for k in metrics:
        if k.startswith("slice/"):
            name = k.split("/")[1]
            if name not in names:
                names.append(name)
    rows = []
    for name in names:
        auc = metrics.get(f"slice/{name}/auc")
        lo = metrics.get(f"slice/{name}/auc_ci_low", float("nan"))
        hi = metrics.get(f"slice/{name}/auc_ci_high", float("nan"))
        rows.append((name, auc, lo, hi))
    return rows


__all__ = [
    "MIN_SLICE",
    "SLICE_KINDS",
    "SLICE_METRICS",
    "check_labels",
    "slice_masks",
    "slice_metrics",
    "slice_table",
]
