"""Score validation and the ROC core: one O(n log n) pass (sort by score, cumulative counts of
members and non-members at the end of each group of tied scores) shared by the ROC, AUC,
thresholds, TPR at fixed FPR and precision-recall functions. Conventions: metrics/__init__.py.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from lit_mia.errors import ConfigError

FPR_LEVELS = (0.01, 0.001)
"""FPR levels of the ``tpr_at_fpr_<level>`` keys of attack_metrics (Carlini et al. 2022)."""

SHADOW_NAMES = ("shadow_scores", "shadow_is_member")
"""Argument names that errors about a shadow (scores, is_member) pair use."""


# --------------------------------------------------------------------------- validation


def as_scores(x: ArrayLike, name: str, size: int | None = None) -> np.ndarray:
    """1-D finite float64 array (of length `size` if given), or ConfigError naming `name`."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be numeric: {e}") from None
    if a.ndim != 1:
        raise ConfigError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0:
        raise ConfigError(f"{name} is empty")
    if n_nan := int(np.isnan(a).sum()):
        raise ConfigError(f"{name} contains {n_nan} NaN value(s)")
    if n_inf := int(np.isinf(a).sum()):
        raise ConfigError(f"{name} contains {n_inf} infinite value(s); scores must be finite")
    if size is not None and a.size != size:
        raise ConfigError(f"{name} and scores differ in length: {a.size} vs {size}")
    return a


def _as_labels(x: ArrayLike, name: str) -> np.ndarray:
    """1-D bool array from bools or 0/1 numbers, or ConfigError naming `name`."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ConfigError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype == np.bool_:
        return a
    try:
        f = a.astype(np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must hold 0/1 or booleans, got dtype {a.dtype}") from None
    if not np.all((f == 0) | (f == 1)):
        bad = np.unique(f[(f != 0) & (f != 1)])[:5]
        raise ConfigError(f"{name} must hold only 0/1 (member = 1), got {bad.tolist()}")
    return f == 1


def check_scores(
    scores: ArrayLike,
    is_member: ArrayLike,
    both_classes: bool = True,
    names: tuple[str, str] = ("scores", "is_member"),
) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(scores, is_member)`` as float64 / bool arrays: 1-D, same length, finite,
    0/1 or bool labels, both classes unless ``both_classes=False``; else ConfigError."""
    s = as_scores(scores, names[0])
    m = _as_labels(is_member, names[1])
    if s.shape != m.shape:
        raise ConfigError(
            f"{names[0]} and {names[1]} differ in length: {s.shape[0]} vs {m.shape[0]}"
        )
    if both_classes:
        n_pos = int(m.sum())
        if n_pos == 0 or n_pos == m.size:
            raise ConfigError(
                f"{names[1]} needs both members and non-members, got {n_pos} members of {m.size}"
            )
    return s, m


# --------------------------------------------------------------------------- ROC core


def _roc_counts(s: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds (descending, starting at +inf) with true/false positive counts (int64).

    Entry i counts the samples with ``score >= thresholds[i]``; entry 0 is the +inf threshold
    (predict nobody a member, tp = fp = 0). One entry per distinct score: O(n log n).
    """
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    m_sorted = m[order]
    ends = np.flatnonzero(np.diff(s_sorted) != 0)  # last index of each tie group but the last
    ends = np.append(ends, s_sorted.size - 1)
    tp = np.cumsum(m_sorted, dtype=np.int64)[ends]
    fp = (ends + 1) - tp
    thresholds = np.concatenate(([np.inf], s_sorted[ends]))
    zero = np.zeros(1, dtype=np.int64)
    return thresholds, np.concatenate((zero, tp)), np.concatenate((zero, fp))


def roc_curve(scores: ArrayLike, is_member: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full ROC curve ``(fpr, tpr, thresholds)``, one point per distinct score plus (0, 0).

    Same points as ``sklearn.metrics.roc_curve(is_member, scores, drop_intermediate=False)``:
    thresholds descend from +inf (predict none) to the minimum score (predict all).
    """
    s, m = check_scores(scores, is_member)
    thr, tp, fp = _roc_counts(s, m)
    return fp / fp[-1], tp / tp[-1], thr


def roc_auc(scores: ArrayLike, is_member: ArrayLike) -> float:
    """Area under the ROC curve, members positive; ties count one half (Mann-Whitney U).

    0.5 = chance, 1 = every member scores above every non-member, 0 = the reverse.
    Equals ``sklearn.metrics.roc_auc_score(is_member, scores)``; computed exactly from integer
    counts with the trapezoid rule over the distinct-score ROC points.
    """
    s, m = check_scores(scores, is_member)
    _, tp, fp = _roc_counts(s, m)
    twice_area = int(np.sum(np.diff(fp) * (tp[1:] + tp[:-1])))
    return twice_area / (2.0 * float(tp[-1]) * float(fp[-1]))


def best_threshold(scores: ArrayLike, is_member: ArrayLike) -> tuple[float, float]:
    """Oracle threshold maximising balanced inference accuracy; returns ``(threshold, acc)``.

    ``acc = 0.5 * (TPR + 1 - FPR)`` (accuracy on equal numbers of members and non-members), the
    "inference accuracy" of Song et al. DLS'19 / CCS'19 with the threshold set to its best value
    on the evaluation set. Candidates: every distinct score (rule ``score >= threshold``) and
    +inf (predict nobody a member, acc 0.5), so the result is never below 0.5. Ties in acc are
    broken towards the largest threshold (fewest predicted members); the comparison is exact
    (integers ``tp * N - fp * P``). O(n log n).
    """
    s, m = check_scores(scores, is_member)
    thr, tp, fp = _roc_counts(s, m)
    n_pos, n_neg = int(tp[-1]), int(fp[-1])
    i = int(np.argmax(tp * n_neg - fp * n_pos))  # first max = largest threshold
    acc = 0.5 * (tp[i] / n_pos + 1.0 - fp[i] / n_neg)
    return float(thr[i]), float(acc)


def threshold_metrics(
    scores: ArrayLike, is_member: ArrayLike, threshold: float
) -> dict[str, float]:
    """Metrics of the rule ``member iff score >= threshold``.

    Keys: ``acc`` (balanced, 0.5 * (TPR + 1 - FPR)), ``precision`` (members among predicted
    members on this set; 0.0 when nobody is predicted a member, as sklearn's zero_division=0),
    ``recall`` (= ``tpr``, fraction of members predicted members), ``tpr``, ``fpr``.
    ``threshold`` may be +inf (predict none) or -inf (predict all), not NaN.
    """
    s, m = check_scores(scores, is_member)
    t = float(threshold)
    if math.isnan(t):
        raise ConfigError("threshold is NaN")
    return decision_metrics(s >= t, m)


def decision_metrics(predicted: ArrayLike, is_member: ArrayLike) -> dict[str, float]:
    """``threshold_metrics`` keys for given member/non-member decisions (bool per sample)."""
    pred = np.asarray(predicted, dtype=bool).reshape(-1)
    m = _as_labels(is_member, "is_member")
    if pred.shape != m.shape:
        raise ConfigError(f"decisions and is_member differ in length: {pred.size} vs {m.size}")
    tp = int(np.sum(pred & m))
    fp = int(np.sum(pred & ~m))
    tpr = tp / int(m.sum())
    fpr = fp / int((~m).sum())
    return {
        "acc": 0.5 * (tpr + 1.0 - fpr),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tpr,
        "tpr": tpr,
        "fpr": fpr,
    }


def tpr_at_fpr(scores: ArrayLike, is_member: ArrayLike, max_fpr: float) -> float:
    """Largest TPR among ROC points with ``FPR < max_fpr``, strictly (Carlini et al. S&P 2022;
    the LiRA reference code's ``tpr[np.where(fpr < level)[0][-1]]``).

    Uses every distinct-score threshold (no interpolation), i.e. the max of ``tpr[fpr < max_fpr]``
    from ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``. ``<=`` would admit one
    false positive at 0.1% with 1,000 non-members (a rule whose true FPR averages ~0.002). With
    N non-members an FPR at or below 1/N can only be met by thresholds with no false positive;
    ``max_fpr = 0`` is read as "no false positive". For an interval see metrics/heldout.py.
    """
    if not 0.0 <= float(max_fpr) <= 1.0:
        raise ConfigError(f"max_fpr must be in [0, 1], got {max_fpr}")
    s, m = check_scores(scores, is_member)
    _, tp, fp = _roc_counts(s, m)
    return _tpr_below(tp, fp, max_fpr)


def _tpr_below(tp: np.ndarray, fp: np.ndarray, max_fpr: float) -> float:
    """``tpr_at_fpr`` from ROC counts (entry 0, no false positive, always qualifies)."""
    ok = (fp / fp[-1] < max_fpr) | (fp == 0)
    return float(np.max(tp[ok]) / tp[-1])


def pr_curve(scores: ArrayLike, is_member: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Precision-recall curve ``(precision, recall)``, members positive.

    One point per distinct score t, in descending t (rule ``score >= t``): recall = TPR rises
    to 1.0, and the last point (predict all) has precision = member fraction, the chance
    level. Every point predicts at least one sample, so precision ``tp / (tp + fp)`` is always
    defined. Same points as ``sklearn.metrics.precision_recall_curve(is_member, scores)``
    reversed, without sklearn's final (recall 0, precision 1) endpoint.
    """
    s, m = check_scores(scores, is_member)
    _, tp, fp = _roc_counts(s, m)
    return tp[1:] / (tp[1:] + fp[1:]), tp[1:] / tp[-1]


def auprc(scores: ArrayLike, is_member: ArrayLike) -> float:
    """Area under the precision-recall curve, members positive (DLS'19 "AUPRC").

    Step-wise average precision ``sum_k (R_k - R_{k-1}) P_k`` over distinct-score thresholds,
    equal to ``sklearn.metrics.average_precision_score(is_member, scores)``. Chance level is the
    member fraction (0.5 on balanced sets).
    """
    s, m = check_scores(scores, is_member)
    _, tp, fp = _roc_counts(s, m)
    d_tp = np.diff(tp)
    hit = d_tp > 0  # recall only moves where members enter; there tp + fp > 0
    precision = tp[1:][hit] / (tp[1:][hit] + fp[1:][hit])
    return float(np.sum(d_tp[hit] * precision) / tp[-1])
