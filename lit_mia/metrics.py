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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from lit_mia.errors import ConfigError

KL_SMOOTHING = 1e-6
"""Additive constant put on every normalised histogram bin before renormalising (loss_kl)."""

FPR_LEVELS = (0.01, 0.001)
"""FPR levels of the ``tpr_at_fpr_<level>`` keys of attack_metrics (Carlini et al. 2022)."""

_SHADOW_NAMES = ("shadow_scores", "shadow_is_member")
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
    """Largest TPR among ROC points with ``FPR <= max_fpr`` (Carlini et al. S&P 2022).

    Uses every distinct-score threshold (no interpolation), i.e. the max of ``tpr[fpr <= max_fpr]``
    from ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``. With N non-members an FPR
    below 1/N can only be met by thresholds with no false positive at all.
    """
    if not 0.0 <= float(max_fpr) <= 1.0:
        raise ConfigError(f"max_fpr must be in [0, 1], got {max_fpr}")
    s, m = check_scores(scores, is_member)
    _, tp, fp = _roc_counts(s, m)
    ok = fp / fp[-1] <= max_fpr
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


# --------------------------------------------------------------------------- loss divergence


def loss_kl(member_losses: ArrayLike, nonmember_losses: ArrayLike, bins: int = 50) -> float:
    """KL divergence ``KL(P_members || P_nonmembers)`` of histogrammed cross-entropy losses.

    The DLS'19 metric (Song, Shokri, Mittal, Sec. III "KL divergence"): how the distribution of
    the CE loss ``-log F(x)_y`` over training examples (members) differs from that over test
    examples (non-members); 0 for a model with no membership leakage, larger = easier to tell
    apart. The paper does not write the formula; we read "training ... different from ... test"
    as ``sum_i p_i log(p_i / q_i)`` with p the member and q the non-member histogram.

    Estimator: ``bins`` equal-width bins over ``[min, max]`` of all losses pooled (both
    histograms share the bins); each histogram is normalised to sum 1, then ``KL_SMOOTHING``
    (1e-6) is added to every bin and it is renormalised, so an empty non-member bin gives a large
    but finite term instead of inf. If all losses are equal the result is 0. The value depends on
    ``bins`` and on the sample sizes: compare numbers computed with the same settings only.
    """
    p_x = as_scores(member_losses, "member_losses")
    q_x = as_scores(nonmember_losses, "nonmember_losses")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ConfigError(f"bins must be a positive integer, got {bins!r}")
    lo = float(min(p_x.min(), q_x.min()))
    hi = float(max(p_x.max(), q_x.max()))
    if lo == hi:
        return 0.0
    p = np.histogram(p_x, bins=int(bins), range=(lo, hi))[0] / p_x.size + KL_SMOOTHING
    q = np.histogram(q_x, bins=int(bins), range=(lo, hi))[0] / q_x.size + KL_SMOOTHING
    p /= p.sum()
    q /= q.sum()
    return float(max(np.sum(p * np.log(p / q)), 0.0))


# --------------------------------------------------------------------------- summary


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
      non-members fall back to.
    - with ``bootstrap`` > 0: ``<m>_ci_low`` / ``<m>_ci_high`` for m in BOOTSTRAP_METRICS
      (percentile bootstrap, ``bootstrap_ci``).

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
    for level in FPR_LEVELS:
        out[f"tpr_at_fpr_{level}"] = tpr_at_fpr(s, m, level)
    if losses is not None:
        loss = as_scores(losses, "losses", s.size)
        out["kl_loss"] = loss_kl(loss[m], loss[~m], bins=kl_bins)
    if (shadow_scores is None) != (shadow_is_member is None):
        raise ConfigError("shadow_scores and shadow_is_member must be given together")
    if shadow_scores is not None:
        ss, sm = check_scores(shadow_scores, shadow_is_member, names=_SHADOW_NAMES)
        thr_c, _ = best_threshold(ss, sm)
        if (labels is None) != (shadow_labels is None):
            raise ConfigError("labels and shadow_labels must be given together")
        if labels is None:
            cal = threshold_metrics(s, m, thr_c)
        else:
            lab = _as_class_labels(labels, s.size, "labels")
            thr = class_thresholds(
                ss, sm, _as_class_labels(shadow_labels, ss.size, "shadow_labels")
            )
            per_sample = np.array([thr.get(int(c), thr_c) for c in lab])
            cal = decision_metrics(s >= per_sample, m)
        out.update(
            {
                "threshold_calibrated": _loggable(thr_c, ss, s),
                "acc_calibrated": cal["acc"],
                "advantage_calibrated": 2.0 * (cal["acc"] - 0.5),
                "precision_calibrated": cal["precision"],
                "recall_calibrated": cal["recall"],
            }
        )
    if bootstrap:
        out.update(bootstrap_ci(s, m, bootstrap, level=ci_level, seed=seed))
    return {k: float(v) for k, v in out.items()}


# --------------------------------------------------------------------------- calibration, CIs


def _as_class_labels(x: ArrayLike, n: int, name: str) -> np.ndarray:
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
    ss, sm = check_scores(shadow_scores, shadow_is_member, both_classes=False, names=_SHADOW_NAMES)
    lab = _as_class_labels(shadow_labels, ss.size, "shadow_labels")
    out: dict[int, float] = {}
    for c in np.unique(lab):
        sel = lab == c
        if sm[sel].all() or not sm[sel].any():
            continue
        out[int(c)], _ = best_threshold(ss[sel], sm[sel])
    return out


BOOTSTRAP_METRICS = ("auc", "acc_best", "advantage_best", *(f"tpr_at_fpr_{f}" for f in FPR_LEVELS))
"""Metrics that get bootstrap confidence intervals in attack_metrics."""


def _point_metrics(s: np.ndarray, m: np.ndarray) -> dict[str, float]:
    """BOOTSTRAP_METRICS of one (re)sample, from one shared ROC pass."""
    _, tp, fp = _roc_counts(s, m)
    n_pos, n_neg = float(tp[-1]), float(fp[-1])
    acc = 0.5 * float(np.max(tp / n_pos - fp / n_neg)) + 0.5
    out = {
        "auc": float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]))) / (2.0 * n_pos * n_neg),
        "acc_best": acc,
        "advantage_best": 2.0 * (acc - 0.5),
    }
    for level in FPR_LEVELS:
        out[f"tpr_at_fpr_{level}"] = float(np.max(tp[fp / n_neg <= level]) / n_pos)
    return out


def bootstrap_ci(
    scores: ArrayLike,
    is_member: ArrayLike,
    n_resamples: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile-bootstrap CIs ``<metric>_ci_low`` / ``<metric>_ci_high`` of BOOTSTRAP_METRICS.

    Members and non-members are resampled with replacement separately (stratified), so every
    resample keeps the evaluation set's class sizes; the interval is the ((1-level)/2,
    (1+level)/2) quantile of the resampled values. The interval is widened to contain the
    point estimate where the percentile interval misses it (possible for skewed statistics
    such as TPR at 0.1% FPR), so `low <= estimate <= high` always holds.
    """
    if int(n_resamples) < 2:
        raise ConfigError(f"bootstrap resamples must be >= 2, got {n_resamples}")
    if not 0.0 < float(level) < 1.0:
        raise ConfigError(f"CI level must be in (0, 1), got {level}")
    s, m = check_scores(scores, is_member)
    pos, neg = s[m], s[~m]
    rng = np.random.default_rng(seed)
    lab = np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)]
    draws: dict[str, list[float]] = {k: [] for k in BOOTSTRAP_METRICS}
    for _ in range(int(n_resamples)):
        rs = np.r_[
            pos[rng.integers(0, pos.size, pos.size)], neg[rng.integers(0, neg.size, neg.size)]
        ]
        for k, v in _point_metrics(rs, lab).items():
            draws[k].append(v)
    point = _point_metrics(s, m)
    q = ((1.0 - level) / 2.0, (1.0 + level) / 2.0)
    out: dict[str, float] = {}
    for k, vals in draws.items():
        lo, hi = np.quantile(np.asarray(vals), q)
        out[f"{k}_ci_low"] = float(min(lo, point[k]))
        out[f"{k}_ci_high"] = float(max(hi, point[k]))
    return out


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
