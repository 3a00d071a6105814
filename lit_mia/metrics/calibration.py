"""Thresholds chosen on shadow data, applied to the target (Song & Mittal, USENIX Security 2021).

The adversary has no target members: it trains a shadow model like the target, picks the
threshold(s) that separate the shadow's own members from its non-members best, and applies
them unchanged to the target's scores. Nothing here ever reads the target's membership labels
except to *score* the fixed decisions (``calibrated``), so the thresholds are a function of
shadow data only (tests/attacks/test_contract.py permutes the target members to check it).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lit_mia.errors import ConfigError
from lit_mia.metrics.roc import SHADOW_NAMES, best_threshold, check_scores, decision_metrics


def as_class_labels(x: ArrayLike, n: int, name: str) -> np.ndarray:
    """1-D int64 class labels of length n, or ConfigError naming `name`."""
    a = np.asarray(x).reshape(-1)
    if a.size != n:
        raise ConfigError(f"{name} and scores differ in length: {a.size} vs {n}")
    return a.astype(np.int64)


def class_thresholds(
    shadow_scores: ArrayLike, shadow_is_member: ArrayLike, shadow_labels: ArrayLike
) -> dict[int, float]:
    """Per-class thresholds (Song & Mittal, USENIX Security 2021, §3.2 "class-dependent
    thresholds"): for every class with both members and non-members in the shadow data, the
    threshold maximising balanced accuracy on the shadow samples of that class
    (``best_threshold``). Classes missing either side are absent; callers fall back to the
    global threshold for them. A +inf ("predict none") threshold is kept as +inf."""
    ss, sm = check_scores(shadow_scores, shadow_is_member, both_classes=False, names=SHADOW_NAMES)
    lab = as_class_labels(shadow_labels, ss.size, "shadow_labels")
    out: dict[int, float] = {}
    for c in np.unique(lab):
        sel = lab == c
        if sm[sel].all() or not sm[sel].any():
            continue
        out[int(c)], _ = best_threshold(ss[sel], sm[sel])
    return out


def per_sample_thresholds(
    labels: np.ndarray, by_class: dict[int, float], fallback: float
) -> np.ndarray:
    """The threshold each sample is judged by: its class's, else the global `fallback`."""
    return np.array([by_class.get(int(c), fallback) for c in labels], dtype=np.float64)


def calibrated(
    scores: np.ndarray,
    is_member: np.ndarray,
    shadow_scores: ArrayLike,
    shadow_is_member: ArrayLike,
    labels: ArrayLike | None = None,
    shadow_labels: ArrayLike | None = None,
) -> tuple[dict[str, float], np.ndarray, float]:
    """Decisions of thresholds chosen on the shadow (scores, is_member[, labels]).

    Returns ``(metrics, decisions, global_threshold)``: ``metrics`` holds ``acc``,
    ``precision``, ``recall`` of the decisions on the target set and ``shadow_acc``, the
    balanced accuracy of the same rule on the shadow's own data (what an adversary can see,
    e.g. to choose an attack parameter); ``decisions`` is the bool member decision per target
    sample (for bootstrap CIs with the thresholds held fixed). With ``labels`` and
    ``shadow_labels`` the thresholds are per class (``class_thresholds``) with the global
    shadow threshold as fallback.
    """
    ss, sm = check_scores(shadow_scores, shadow_is_member, names=SHADOW_NAMES)
    thr_g, shadow_acc = best_threshold(ss, sm)
    if (labels is None) != (shadow_labels is None):
        raise ConfigError("labels and shadow_labels must be given together")
    if labels is None:
        decisions = scores >= thr_g
    else:
        lab = as_class_labels(labels, scores.size, "labels")
        slab = as_class_labels(shadow_labels, ss.size, "shadow_labels")
        by_class = class_thresholds(ss, sm, slab)
        decisions = scores >= per_sample_thresholds(lab, by_class, thr_g)
        shadow_acc = decision_metrics(ss >= per_sample_thresholds(slab, by_class, thr_g), sm)["acc"]
    cal = decision_metrics(decisions, is_member)
    out = {k: cal[k] for k in ("acc", "precision", "recall")}
    out["shadow_acc"] = float(shadow_acc)
    return out, decisions, thr_g


__all__ = ["as_class_labels", "calibrated", "class_thresholds", "per_sample_thresholds"]
