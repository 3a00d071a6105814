"""Membership-inference metrics: pure functions over 1-D arrays of scores.

Conventions (every function here):

- Members are the positive class, always (``is_member`` is 1/True for a member).
- A higher score means "more likely a member"; the decision rule is
  ``member iff score >= threshold``. Scores may be unbounded (-loss, the LiRA logit
  phi = log p_y - log(1 - p_y)) and may tie; they are used raw, never squashed through a sigmoid,
  so rank-based metrics see the attack's own order.
- Scores must be finite: NaN or +-inf is a ``ConfigError`` (compute log-probabilities with
  log_softmax / cross_entropy, or clip, in the attack).
- Inference accuracy is the *balanced* accuracy ``0.5 * (TPR + 1 - FPR)``, i.e. the accuracy on
  equal numbers of members and non-members (Song, Shokri, Mittal, DLS'19 and CCS'19 evaluate on
  balanced sets). Advantage is ``2 * (acc - 0.5) = TPR - FPR``.
- ``*_best`` numbers use the oracle threshold chosen on the evaluation set itself (the upper
  bound the papers report: "we set the value of confidence threshold to achieve the highest
  inference accuracy value", DLS'19 Sec. III); ``*_calibrated`` numbers use a threshold chosen
  on shadow data and then applied to the target (Song & Mittal 2021).
- TPR at low FPR (1%, 0.1%) and the log-log ROC follow Carlini et al., "Membership Inference
  Attacks From First Principles", S&P 2022.

The ROC-based functions share one O(n log n) pass: sort by score, cumulative counts of members
(true positives) and non-members (false positives) at the end of each group of tied scores.

The package is split by topic (downward imports only: roc <- divergence, calibration,
intervals, privacy <- summary): ``roc`` (validation, ROC core, thresholds, TPR at FPR, PR),
``divergence`` (loss KL), ``calibration`` (shadow-chosen thresholds), ``intervals`` (bootstrap
CIs), ``privacy`` (ε and Gaussian-DP μ lower bounds with Clopper-Pearson rates, PPV at a low
member prior), ``summary`` (``attack_metrics``, the per-sample score dump). Import from the
package: ``from lit_mia import metrics; metrics.roc_auc(...)``.
"""

from __future__ import annotations

from lit_mia.metrics.calibration import (
    as_class_labels,
    calibrated,
    class_thresholds,
    per_sample_thresholds,
)
from lit_mia.metrics.divergence import KL_SMOOTHING, loss_kl
from lit_mia.metrics.heldout import (
    eps_lb,
    heldout_bounds,
    heldout_decision,
    mu_lb,
    not_estimable,
    split_halves,
    tpr_at_fpr_keys,
    tpr_interval,
)
from lit_mia.metrics.intervals import BOOTSTRAP_METRICS, bootstrap_ci, point_metrics
from lit_mia.metrics.privacy import (
    PRIORS,
    clopper_pearson_lower,
    clopper_pearson_upper,
    eps_from_mu,
    eps_from_rates,
    eps_lb_at,
    mu_from_rates,
    ppv,
)
from lit_mia.metrics.roc import (
    FPR_LEVELS,
    as_scores,
    auprc,
    best_threshold,
    check_scores,
    decision_metrics,
    pr_curve,
    roc_auc,
    roc_curve,
    threshold_metrics,
    tpr_at_fpr,
)
from lit_mia.metrics.summary import attack_metrics, read_scores_table, scores_table

__all__ = [
    "BOOTSTRAP_METRICS",
    "FPR_LEVELS",
    "KL_SMOOTHING",
    "PRIORS",
    "as_class_labels",
    "as_scores",
    "attack_metrics",
    "auprc",
    "best_threshold",
    "bootstrap_ci",
    "calibrated",
    "check_scores",
    "class_thresholds",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "decision_metrics",
    "eps_from_mu",
    "eps_from_rates",
    "eps_lb",
    "eps_lb_at",
    "heldout_bounds",
    "heldout_decision",
    "loss_kl",
    "mu_from_rates",
    "mu_lb",
    "not_estimable",
    "per_sample_thresholds",
    "point_metrics",
    "ppv",
    "pr_curve",
    "read_scores_table",
    "roc_auc",
    "roc_curve",
    "scores_table",
    "split_halves",
    "threshold_metrics",
    "tpr_at_fpr",
    "tpr_at_fpr_keys",
    "tpr_interval",
]
