"""Sound bounds and intervals from a threshold chosen on held-out data (issue 23).

A Clopper–Pearson bound on the FPR or FNR of a decision rule holds at its stated confidence
only for a rule fixed before the rates are counted. Taking the best of all thresholds on the
same scores (the "empirical" ε lower bound of TensorFlow Privacy's and ML Privacy Meter's
reports) is > 0 in 15–29% of no-signal evaluations at a nominal 5%. Here every bound and
interval uses the *held-out* construction (Jagielski, Ullman, Oprea, NeurIPS 2020, §4; Nasr et
al., S&P 2021, §4.1: choose the threshold on one set, count on another):

1. ``split_halves`` draws a seeded, stratified half of the members and of the non-members:
   the *selection* half. Nothing the bound reports is counted on it.
2. The rule ``member iff score >= t`` is chosen on the selection half (largest ε, μ, or
   balanced accuracy there), then its FP and FN counts are taken on the *evaluation* half
   once. One-sided Clopper–Pearson upper bounds FPR⁺, FNR⁺ at α/2 each hold jointly at
   1 - α (union bound), so ``eps_from_rates(FPR⁺, FNR⁺, δ)`` and ``mu_from_rates`` are lower
   bounds at confidence 1 - α.

Which side of the ROC certifies: ``eps_from_rates`` takes the larger of
``log((1 - δ - FNR)/FPR)`` (member detection: few false "member" calls; the low-FPR corner)
and ``log((1 - δ - FPR)/FNR)`` (non-member detection: few false "non-member" calls).
``eps_lb_member_side`` is 1.0 when the first gave the bound.

What this certifies: the samples are scored by *one* trained model, so they are not
independent runs of the training algorithm. The bound is a statement about this model on this
sampling of members and non-members (an attack with this FPR/FNR exists against this model at
confidence 1 - α over the draw of the evaluation samples); it lower-bounds the ε of the
training algorithm only under the usual audit reading that one model's per-sample membership
test is one DP hypothesis test per sample (as in Steinke, Nasr, Jagielski 2023, which makes that
reading exact for canaries included independently at random: lit_mia/attacks/dp_audit.py).

TPR at a low FPR (``tpr_interval``): two thresholds are fixed by the non-members alone, at
order statistics whose true FPR is below / above the level with known probability (the j-th
largest of n non-members has FPR ~ Beta(j, n + 1 - j)); the members, independent of them, are
then counted once at each, with one-sided Clopper–Pearson bounds. The interval covers the TPR
at true FPR = level, with no split and no bootstrap (which covered TPR@0.1% 72–90%). The
point estimate ``tpr_at_fpr`` uses empirical FPR strictly below the level. The metric is
flagged ``_not_estimable`` when n_nonmembers × level < 10 (fewer than ten false positives
expected: the FPR of any rule on this set is resolved to no better than a factor of ~2).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import beta as beta_dist

from lit_mia.errors import ConfigError
from lit_mia.metrics.privacy import (
    PRIORS,
    check_alpha_delta,
    clopper_pearson_lower,
    clopper_pearson_upper,
    eps_from_mu,
    eps_from_rates,
    mu_from_rates,
    ppv,
)
from lit_mia.metrics.roc import _roc_counts, check_scores, tpr_at_fpr

MIN_EXPECTED_FP = 10
"""A TPR at FPR level is flagged not estimable when n_nonmembers × level is below this."""


def split_halves(is_member: ArrayLike, seed: int = 0) -> np.ndarray:
    """Bool mask of the selection half: a seeded random half (floor) of the members and of the
    non-members, drawn separately so each half keeps the class ratio."""
    m = np.asarray(is_member, dtype=bool).reshape(-1)
    rng = np.random.default_rng((int(seed), 0x5E1))
    sel = np.zeros(m.size, dtype=bool)
    for cls in (True, False):
        idx = np.flatnonzero(m == cls)
        sel[rng.permutation(idx)[: idx.size // 2]] = True
    return sel


def not_estimable(n_nonmembers: int, level: float) -> bool:
    """True when n_nonmembers × level < MIN_EXPECTED_FP (module docstring)."""
    return int(n_nonmembers) * float(level) < MIN_EXPECTED_FP


def _halves(s: np.ndarray, m: np.ndarray, seed: int):
    """((s, m) of the selection half, (s, m) of the evaluation half), or None when a half
    lacks a class (fewer than 2 members or non-members)."""
    sel = split_halves(m, seed)
    if min(int(m[sel].sum()), int((~m[sel]).sum()), int(m[~sel].sum()), int((~m[~sel]).sum())) < 1:
        return None
    return (s[sel], m[sel]), (s[~sel], m[~sel])


def _rule_rates_up(d: np.ndarray, m: np.ndarray, alpha: float) -> tuple[float, float]:
    """(FPR⁺, FNR⁺) of fixed decisions ``d``: one-sided CP upper bounds at α/2 each."""
    n_pos, n_neg = int(m.sum()), int((~m).sum())
    fpr_up = float(clopper_pearson_upper(int(np.sum(d & ~m)), n_neg, alpha / 2))
    fnr_up = float(clopper_pearson_upper(int(np.sum(~d & m)), n_pos, alpha / 2))
    return fpr_up, fnr_up


def _rough_upper(k: np.ndarray, n: int) -> np.ndarray:
    """A fast, roughly 95% upper bound of k/n (Poisson-style k + 1 + 1.65·sqrt(k + 1)), only
    used to *choose* a rule on the selection half; any choice keeps the bound sound."""
    return np.minimum((k + 1.0 + 1.65 * np.sqrt(k + 1.0)) / n, 1.0)


def _select_threshold(s: np.ndarray, m: np.ndarray, crit) -> float:
    """The threshold maximising ``crit(tp, fp, n_pos, n_neg)`` (arrays over the ROC points of
    the given half; first max = largest threshold)."""
    thr, tp, fp = _roc_counts(s, m)
    return float(thr[int(np.argmax(crit(tp, fp, int(tp[-1]), int(fp[-1]))))])


def select_threshold(s: np.ndarray, m: np.ndarray, bound: str, delta: float) -> float:
    """The threshold ``heldout_bounds`` takes for ``bound`` ("eps" or "mu") from the selection
    half (s, m): the largest bound of rough upper rates there (lit_mia/metrics/planning.py
    replays this choice to plan sample sizes)."""

    def up(tp, fp, n_pos, n_neg):  # selection only: a cheap stand-in for the CP upper bound
        return _rough_upper(fp, n_neg), _rough_upper(n_pos - tp, n_pos)

    if bound == "eps":
        return _select_threshold(s, m, lambda *a: eps_from_rates(*up(*a), delta))
    return _select_threshold(s, m, lambda *a: mu_from_rates(*up(*a)))


def heldout_bounds(
    scores: ArrayLike, is_member: ArrayLike, alpha: float = 0.05, delta: float = 1e-5, seed: int = 0
) -> dict[str, float]:
    """``eps_lb``, ``mu_lb``, ``eps_lb_gdp`` (= eps_from_mu(mu_lb, δ)) and
    ``eps_lb_member_side`` at confidence 1 - α, each from a rule chosen on the selection half
    and counted once on the evaluation half (module docstring); all 0.0 when a half lacks a
    class."""
    check_alpha_delta(alpha, delta)
    s, m = check_scores(scores, is_member)
    zero = {"eps_lb": 0.0, "mu_lb": 0.0, "eps_lb_gdp": 0.0, "eps_lb_member_side": 0.0}
    halves = _halves(s, m, seed)
    if halves is None:
        return zero
    (sa, ma), (sb, mb) = halves

    t_eps = select_threshold(sa, ma, "eps", delta)
    t_mu = select_threshold(sa, ma, "mu", delta)
    fpr_e, fnr_e = _rule_rates_up(sb >= t_eps, mb, alpha)
    fpr_m, fnr_m = _rule_rates_up(sb >= t_mu, mb, alpha)
    eps = float(eps_from_rates(fpr_e, fnr_e, delta))
    mu = float(mu_from_rates(fpr_m, fnr_m))
    # member side: log((1-δ-FNR)/FPR); non-member side: log((1-δ-FPR)/FNR); cross-multiplied
    member = (1.0 - delta - fnr_e) * fnr_e >= (1.0 - delta - fpr_e) * fpr_e
    return {
        "eps_lb": eps,
        "mu_lb": mu,
        "eps_lb_gdp": eps_from_mu(mu, delta),
        "eps_lb_member_side": float(eps > 0 and member),
    }


def order_statistic_ranks(n: int, level: float, a: float) -> tuple[int, int]:
    """(j_below, j_above) among n non-member scores sorted descending: the rule ``score >
    X_(j)`` has true FPR ~ Beta(j, n + 1 - j) for continuous scores (the j-th largest of n
    uniforms), so j_below (largest j with P[FPR > level] <= a) has FPR <= level, and j_above
    (smallest j with P[FPR < level] <= a) has FPR >= level, each with probability >= 1 - a.
    0 where no j qualifies for j_below (then TPR's lower end is 0), n + 1 for j_above (upper 1)."""
    j = np.arange(1, n + 1)
    sf = beta_dist.sf(level, j, n + 1 - j)  # P[FPR > level], increasing in j
    below = np.flatnonzero(sf <= a)
    above = np.flatnonzero(1.0 - sf <= a)
    return (int(j[below[-1]]) if below.size else 0, int(j[above[0]]) if above.size else n + 1)


def tpr_interval(
    scores: ArrayLike,
    is_member: ArrayLike,
    level: float,
    ci_level: float = 0.95,
) -> dict[str, float]:
    """``tpr_at_fpr_<level>_ci_low`` / ``_ci_high``: interval at ``ci_level`` of the TPR of
    the rule whose *true* FPR is ``level`` (continuous scores). Two thresholds are fixed by the
    non-members alone (``order_statistic_ranks``, (1 - ci_level)/4 each): one with FPR <= level,
    one with FPR >= level; the members, independent of them, give a one-sided Clopper–Pearson
    lower bound of the first rule's TPR and upper bound of the second's ((1 - ci_level)/4 each),
    and TPR is monotone in the threshold. ``..._not_estimable`` = 1.0 where n_nonmembers ×
    level < 10."""
    if not 0.0 < float(level) < 1.0:
        raise ConfigError(f"FPR level must be in (0, 1), got {level!r}")
    if not 0.0 < float(ci_level) < 1.0:
        raise ConfigError(f"CI level must be in (0, 1), got {ci_level!r}")
    s, m = check_scores(scores, is_member)
    neg = np.sort(s[~m])[::-1]
    pos = s[m]
    a = (1.0 - float(ci_level)) / 4
    j_below, j_above = order_statistic_ranks(neg.size, float(level), a)
    key = f"tpr_at_fpr_{level}"
    low = 0.0
    if j_below >= 1:
        low = float(clopper_pearson_lower(int(np.sum(pos > neg[j_below - 1])), pos.size, a))
    high = 1.0
    if j_above <= neg.size:
        high = float(clopper_pearson_upper(int(np.sum(pos >= neg[j_above - 1])), pos.size, a))
    out = {f"{key}_ci_low": low, f"{key}_ci_high": high}
    if not_estimable(neg.size, level):
        out[f"{key}_not_estimable"] = 1.0
    return out


def tpr_at_fpr_keys(
    scores: ArrayLike, is_member: ArrayLike, level: float, ci_level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """``tpr_at_fpr_<level>`` (strict ``<``, metrics.tpr_at_fpr) with its ``tpr_interval``
    keys and ``_below_resolution`` = 1.0 where level <= 1 / n_nonmembers (only rules with zero
    false positives qualify: at 1e-4 with fewer than 10,000 non-members it is the TPR at FPR 0)."""
    s, m = check_scores(scores, is_member)
    key = f"tpr_at_fpr_{level}"
    out = {key: tpr_at_fpr(s, m, level), **tpr_interval(s, m, level, ci_level)}
    if float(level) <= 1.0 / int((~m).sum()):
        out[f"{key}_below_resolution"] = 1.0
    return out


def heldout_decision(
    scores: ArrayLike, is_member: ArrayLike, ci_level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """The balanced-accuracy rule chosen on the selection half, counted on the evaluation half:
    ``acc_heldout``, ``advantage_heldout`` (TPR - FPR) and ``ppv_at_prior_<π>`` for π in PRIORS,
    each with ``_ci_low`` / ``_ci_high`` from two-sided Clopper–Pearson intervals on TPR and FPR
    at (1 - ci_level)/4 per end: both rates lie in their intervals jointly at >= ci_level, and
    each metric is monotone in (TPR, -FPR), so its interval is the image of the corners."""
    s, m = check_scores(scores, is_member)
    halves = _halves(s, m, seed)
    keys = ["acc_heldout", "advantage_heldout", *(f"ppv_at_prior_{p}" for p in PRIORS)]
    if halves is None:
        return {}
    (sa, ma), (sb, mb) = halves
    t = _select_threshold(sa, ma, lambda tp, fp, n_pos, n_neg: tp * n_neg - fp * n_pos)
    d = sb >= t
    n_pos, n_neg = int(mb.sum()), int((~mb).sum())
    tp, fp = int(np.sum(d & mb)), int(np.sum(d & ~mb))
    a = (1.0 - float(ci_level)) / 4
    tpr = (tp / n_pos, clopper_pearson_lower(tp, n_pos, a), clopper_pearson_upper(tp, n_pos, a))
    fpr = (fp / n_neg, clopper_pearson_lower(fp, n_neg, a), clopper_pearson_upper(fp, n_neg, a))

    def values(t_, f_):
        return [0.5 * (t_ + 1.0 - f_), t_ - f_, *(float(ppv(t_, f_, p)) for p in PRIORS)]

    point, low, high = values(tpr[0], fpr[0]), values(tpr[1], fpr[2]), values(tpr[2], fpr[1])
    out: dict[str, float] = {}
    for k, v, lo, hi in zip(keys, point, low, high, strict=True):
        out[k], out[f"{k}_ci_low"], out[f"{k}_ci_high"] = float(v), float(lo), float(hi)
    return out


def eps_lb(
    scores: ArrayLike, is_member: ArrayLike, alpha: float = 0.05, delta: float = 1e-5, seed: int = 0
) -> float:
    """ε lower bound at confidence 1 - α from a held-out threshold (``heldout_bounds``)."""
    return heldout_bounds(scores, is_member, alpha, delta, seed)["eps_lb"]


def mu_lb(scores: ArrayLike, is_member: ArrayLike, alpha: float = 0.05, seed: int = 0) -> float:
    """Gaussian-DP μ lower bound at confidence 1 - α from a held-out threshold (Nasr et al.,
    "Tight Auditing", USENIX Security 2023, with the threshold fixed in advance)."""
    return heldout_bounds(scores, is_member, alpha, 1e-5, seed)["mu_lb"]


def sound_metrics(
    s: np.ndarray,
    m: np.ndarray,
    levels: tuple[float, ...],
    alpha: float,
    delta: float,
    ci_level: float,
    seed: int,
    calibrated: dict[str, float] | None = None,
) -> dict[str, float]:
    """The held-out keys of attack_metrics: ``heldout_bounds``, ``heldout_decision``,
    ``tpr_interval`` for every FPR level, and ``ppv_at_prior_<π>_calibrated`` for the
    shadow-calibrated decisions' rates (``calibrated``: {"tpr", "fpr"}) when given."""
    out = heldout_bounds(s, m, alpha, delta, seed)
    out.update(heldout_decision(s, m, ci_level, seed))
    for level in levels:
        out.update(tpr_at_fpr_keys(s, m, level, ci_level, seed))
    if calibrated is not None:
        for p in PRIORS:
            out[f"ppv_at_prior_{p}_calibrated"] = float(
                ppv(calibrated["tpr"], calibrated["fpr"], p)
            )
    return out


__all__ = [
    "MIN_EXPECTED_FP",
    "eps_lb",
    "heldout_bounds",
    "heldout_decision",
    "mu_lb",
    "not_estimable",
    "order_statistic_ranks",
    "select_threshold",
    "sound_metrics",
    "split_halves",
    "tpr_at_fpr_keys",
    "tpr_interval",
]
