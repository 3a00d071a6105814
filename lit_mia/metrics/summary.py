"""The metric set of one attack on one evaluation set (``attack_metrics``) and the per-sample
score dump. Conventions: metrics/__init__.py."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from lit_mia.errors import ConfigError
from lit_mia.metrics.calibration import calibrated
from lit_mia.metrics.divergence import loss_kl
from lit_mia.metrics.heldout import sound_metrics
from lit_mia.metrics.intervals import bootstrap_ci
from lit_mia.metrics.roc import (
    FPR_LEVELS,
    as_scores,
    auprc,
    best_threshold,
    check_scores,
    roc_auc,
    threshold_metrics,
)


def _loggable(threshold: float, *score_sets: np.ndarray) -> float:
    """+inf -> a finite value above every score (MLflow rejects inf); others unchanged.

    ``max score + 1.0``; where that rounds back to the max (|score| above ~1e16) the next float
    above it. Applying it with ``score >= threshold`` still predicts nobody a member (except
    when the max score is already the largest float64, which is returned as is).
    """
    if not math.isinf(threshold):
        return threshold
    top = max(float(s.max()) for s in score_sets)
    biggest = float(np.finfo(np.float64).max)
    if top >= biggest:
        return biggest  # nothing finite lies above; scores this large are a bug upstream
    out = top + 1.0
    return out if out > top else float(np.nextafter(top, np.inf))


def attack_metrics(
    scores: ArrayLike,
    is_member: ArrayLike,
    losses: ArrayLike | None = None,
    shadow_scores: ArrayLike | None = None,
    shadow_is_member: ArrayLike | None = None,
    kl_bins: int = 50,
    labels: ArrayLike | None = None,
    shadow_labels: ArrayLike | None = None,
    bootstrap: int = 0,
    ci_level: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
    delta: float = 1e-5,
) -> dict[str, float]:
    """All scalar metrics of one attack on one evaluation set, as python floats.

    Keys (prefix them, e.g. ``attack/ib/auc``, when logging):

    - ``auc``; ``auprc``; ``tpr_at_fpr_0.01``, ``tpr_at_fpr_0.001``.
    - ``threshold_best``, ``acc_best``, ``advantage_best`` (= 2 * (acc_best - 0.5)),
      ``precision``, ``recall``: the oracle threshold of ``best_threshold`` and the metrics at it.
    - with ``losses`` (CE loss per sample, aligned with ``scores``): ``kl_loss`` =
      ``loss_kl(losses[members], losses[non-members], kl_bins)``.
    - with ``shadow_scores`` and ``shadow_is_member``: ``threshold_calibrated`` (the best
      threshold on the shadow set), and ``acc_calibrated``, ``advantage_calibrated``,
      ``precision_calibrated``, ``recall_calibrated`` of that threshold on the target set.
      With ``labels`` and ``shadow_labels`` (true class of every sample) the calibrated
      threshold is per class (Song & Mittal 2021, ``class_thresholds``); ``threshold_calibrated``
      is then the global shadow threshold that classes without both shadow members and
      non-members fall back to. ``acc_calibrated_shadow``: the same rule's accuracy on the
      shadow's own data (what an adversary sees; metrics/calibration.py).
    - ``tpr_at_fpr_<level>`` is the TPR at empirical FPR strictly below ``level``;
      ``tpr_at_fpr_<level>_below_resolution`` = 1.0 where ``level`` <= 1 / n_nonmembers (only
      rules with no false positive qualify); ``tpr_at_fpr_<level>_not_estimable`` = 1.0 where
      n_nonmembers × level < 10; ``tpr_at_fpr_<level>_ci_low`` / ``_ci_high`` /
      ``_rule_fpr``: Clopper-Pearson interval at a threshold fixed on held-out non-members.
    - held-out (metrics/heldout.py; sound at their stated confidence): ``eps_lb``, ``mu_lb``,
      ``eps_lb_gdp`` (confidence 1 - ``alpha``, δ = ``delta``), ``eps_lb_member_side``;
      ``acc_heldout``, ``advantage_heldout``, ``ppv_at_prior_0.01`` / ``_0.1`` (precision when
      members are 1% / 10% of the population) of a threshold chosen on the other half, each
      with ``_ci_low`` / ``_ci_high`` at ``ci_level``; ``ppv_at_prior_<π>_calibrated`` for the
      calibrated decision.
    - with ``bootstrap`` > 0: ``auc_ci_low`` / ``auc_ci_high`` (percentile bootstrap,
      ``bootstrap_ci``), and ``acc_calibrated_ci_*`` with the shadow's thresholds held fixed.
      ``acc_best`` / ``advantage_best`` (oracle, maximised on these scores) get no interval.

    A +inf ("predict none") threshold is reported as the largest score involved + 1.0 (see
    ``_loggable``), since MLflow rejects inf; that value still predicts nobody a member.
    """
    s, m = check_scores(scores, is_member)
    thr, acc = best_threshold(s, m)
    at_best = threshold_metrics(s, m, thr)
    out: dict[str, float] = {
        "auc": roc_auc(s, m),
        "acc_best": acc,
        "advantage_best": 2.0 * (acc - 0.5),
        "threshold_best": _loggable(thr, s),
        "precision": at_best["precision"],
        "recall": at_best["recall"],
        "auprc": auprc(s, m),
    }
    if losses is not None:
        loss = as_scores(losses, "losses", s.size)
        out["kl_loss"] = loss_kl(loss[m], loss[~m], bins=kl_bins)
    if (shadow_scores is None) != (shadow_is_member is None):
        raise ConfigError("shadow_scores and shadow_is_member must be given together")
    decisions = None
    if shadow_scores is not None:
        cal, decisions, thr_c = calibrated(
            s, m, shadow_scores, shadow_is_member, labels, shadow_labels
        )
        out.update(
            {
                "threshold_calibrated": _loggable(thr_c, as_scores(shadow_scores, "s"), s),
                "acc_calibrated": cal["acc"],
                "advantage_calibrated": 2.0 * (cal["acc"] - 0.5),
                "precision_calibrated": cal["precision"],
                "recall_calibrated": cal["recall"],
                "acc_calibrated_shadow": cal["shadow_acc"],
            }
        )
    cal_rates = None
    if decisions is not None:
        cal_rates = {"tpr": float(decisions[m].mean()), "fpr": float(decisions[~m].mean())}
    out.update(sound_metrics(s, m, FPR_LEVELS, alpha, delta, ci_level, seed, cal_rates))
    if bootstrap:
        out.update(bootstrap_ci(s, m, bootstrap, level=ci_level, seed=seed, decisions=decisions))
    return {k: float(v) for k, v in out.items()}


def scores_table(
    scores: ArrayLike,
    is_member: ArrayLike,
    losses: ArrayLike | None = None,
    index: ArrayLike | Sequence[int] | None = None,
) -> str:
    """Per-sample CSV text ``index,is_member,score[,loss]`` for the run's artifact.

    ``index`` defaults to 0..n-1 (pass the dataset indices of the evaluation samples);
    ``is_member`` is written 0/1; floats use ``repr`` so they round-trip exactly. A single class
    is allowed here (it is a dump, not a metric).
    """
    s, m = check_scores(scores, is_member, both_classes=False)
    cols = [s]
    if losses is not None:
        cols.append(as_scores(losses, "losses", s.size))
    idx = np.arange(s.size) if index is None else np.asarray(index)
    if idx.shape != s.shape:
        raise ConfigError(f"index and scores differ in shape: {idx.shape} vs {s.shape}")
    header = "index,is_member,score" + (",loss" if losses is not None else "")
    lines = [header]
    for i in range(s.size):
        vals = ",".join(repr(float(c[i])) for c in cols)
        lines.append(f"{idx[i]},{int(m[i])},{vals}")
    return "\n".join(lines) + "\n"


def read_scores_table(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(index, is_member, score) from `scores_table`'s CSV text (floats round-trip exactly);
    None for a file with no rows or no score column."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        return None
    head = lines[0].split(",")
    if not {"index", "is_member", "score"} <= set(head):
        return None
    cols = {h: k for k, h in enumerate(head)}
    rows = [ln.split(",") for ln in lines[1:]]
    index = np.array([int(r[cols["index"]]) for r in rows], dtype=np.int64)
    member = np.array([int(r[cols["is_member"]]) for r in rows], dtype=np.int64)
    score = np.array([float(r[cols["score"]]) for r in rows], dtype=float)
    return index, member, score


__all__ = ["attack_metrics", "read_scores_table", "scores_table"]
