"""Sample sizes before any training (`lit-mia plan`, issue 23): how many members, non-members or
canaries an audit needs to resolve a TPR at low FPR, to detect an AUC difference between two
targets, or to certify ε >= x. Pure functions; each states the model it assumes, and each
planned size is checked by simulation against the project's own estimators in
tests/metrics/test_planning.py. docs/howto/plan-and-budget.md explains the choices.

TPR at FPR (``tpr_plan``). Non-members first: at least ``MIN_EXPECTED_FP / fpr`` (the metric's
``_not_estimable`` rule, metrics/heldout.py). The interval is heldout.tpr_interval's: two
order-statistic thresholds on the non-members, Clopper–Pearson on the members at each. Its
half-width (high - low)/2 is predicted for an assumed *binormal* ROC through (fpr, tpr)
(member scores N(μ, 1), non-member N(0, 1), μ = Φ⁻¹(tpr) - Φ⁻¹(fpr)): the thresholds' FPRs at
the medians of their Beta laws, the member counts at their means. It is the typical (median)
half-width, not a guarantee for every draw.

ΔAUC (``delta_auc_plan``): a two-sided z-test of AUC₁ = AUC₂ at level α with power 1 - β,
Var(Â₁ - Â₂) = V₁ + V₂ - 2r·sqrt(V₁V₂), each V from Hanley & McNeil (Radiology 1982, eq. 1-3:
Q₁ = A/(2 - A), Q₂ = 2A²/(1 + A)); r is the correlation of the two AUC *estimates* (Hanley &
McNeil, Radiology 1983): 0 for targets evaluated on independent samples, positive when both
targets are scored on the same members and non-members (a pilot audit measures it). Members
= non-members = n.

ε >= x, held-out bound (``heldout_eps_plan``): metrics/heldout.py chooses the threshold on a
half of each class and counts once on the other half with one-sided Clopper–Pearson at α/2
each. The scores are assumed to come from a mechanism with known trade-off curve: ``laplace``
(Laplace(0, 1) vs Laplace(ε, 1), exactly ε-DP), ``gaussian`` (N(0, 1) vs N(μ, 1), μ-GDP with μ
set so that it is (ε, δ)-DP) or ``rr`` (randomized response: one rule with FPR = FNR =
1/(1 + e^ε)). The planner replays the selection (heldout.select_threshold on seeded draws
of the selection half) and sums the exact binomial law of the evaluation half's counts at each
chosen threshold, so the power includes what the selection costs (a threshold fixed at its
population optimum overstates it: Gaussian ε_true = 4, ε >= 2 reached 0.60 instead of 0.80
in 400 simulated audits at the n such a plan gave).
No sample certifies more than the mechanism's own ε at δ, ``sup_t eps_from_rates(FPR(t),
FNR(t), δ)`` (the bound is sound); asking for that or more is refused.

ε >= x, one-run audit (``one_run_plan``, metrics/one_run.py): m canaries, each in the run with
probability ½; the auditor guesses IN for the top and OUT for the bottom round(f·m/2) scores
(metrics.one_run_guesses). The power is the share of seeded simulated audits (inclusion,
scores, guesses as in attacks/dp_audit.py) whose correct guesses reach v*, the fewest whose
p-value at ε = x is <= α (exact); ``guess_accuracy`` (the top fraction f of |score -
midpoint|, for symmetric mechanisms) is reported beside it.
As m grows the p-value's 2mδ term tends to 2δ / (f·(accuracy - q(x))), q(x) = e^x/(1 + e^x)
(Steinke, Nasr, Jagielski, NeurIPS 2023, Thm 5.2): x with 2δ >= α·f·(accuracy - q(x)) is
refused, its p-value's limit being above α (a limit, not a bound for every m: the test checks
m = 10³ ... 10⁵ with every guess right).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import bdtr, betaincinv, gammaln
from scipy.stats import beta, laplace, norm

from lit_mia.errors import ConfigError
from lit_mia.metrics.heldout import MIN_EXPECTED_FP, select_threshold
from lit_mia.metrics.one_run import one_run_guesses, one_run_p_value
from lit_mia.metrics.privacy import eps_from_mu, eps_from_rates, gdp_delta

MECHANISMS = ("laplace", "gaussian", "rr")
"""Score models of the ε plans (module docstring)."""

TAIL = 1e-12
"""Binomial mass left out at each end when the power is summed over counts."""


def _smallest(ok, lo: int, hi: int, rel: float = 0.0) -> int | None:
    """Smallest n in [lo, hi] with ok(n), for ok monotone (False ... True): doubling from lo,
    then bisection until the bracket is within ``rel`` of n (0: exact; the upper end, where
    ok holds, is returned). None when ok(hi) is False."""
    if ok(lo):
        return lo
    while True:  # invariant: ok(lo) is False
        up = min(2 * lo, hi)
        if ok(up):
            break
        if up >= hi:
            return None
        lo = up
    while up - lo > max(1.0, rel * up):
        mid = (lo + up) // 2
        lo, up = (lo, mid) if ok(mid) else (mid, up)
    return up


# --------------------------------------------------------------------------- TPR at FPR


def _cp_upper(k: np.ndarray, n: int, a: float) -> np.ndarray:
    """privacy.clopper_pearson_upper through scipy.special (no distribution-object overhead:
    the planner calls it thousands of times)."""
    k = np.asarray(k, dtype=np.float64)
    return np.where(k >= n, 1.0, betaincinv(k + 1.0, np.maximum(n - k, 1e-300), 1.0 - a))


@functools.lru_cache(maxsize=256)
def order_ranks(n: int, level: float, a: float) -> tuple[int, int]:
    """heldout.order_statistic_ranks by bisection on j (P[FPR > level] = Beta(j, n + 1 - j).sf
    increases in j): O(log n) instead of O(n), for the planner's large n."""

    def sf(j: int) -> float:
        return float(beta.sf(level, j, n + 1 - j))

    def first(ok) -> int:  # smallest j in [1, n] with ok(j), n + 1 if none (ok monotone)
        lo, hi = 0, n + 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid, hi)
        return hi

    below = first(lambda j: sf(j) > a) - 1  # the largest j with sf(j) <= a (0: none)
    return below, first(lambda j: 1.0 - sf(j) <= a)


def tpr_half_width(n_pos: int, n_neg: int, fpr: float, tpr: float, ci_level: float) -> float:
    """Median half-width of heldout.tpr_interval at TPR level ``fpr`` for a binormal ROC
    through (fpr, tpr) with n_pos members and n_neg non-members (module docstring)."""
    a = (1.0 - ci_level) / 4
    mu = norm.ppf(tpr) - norm.ppf(fpr)
    j_below, j_above = order_ranks(int(n_neg), float(fpr), a)

    def tpr_at(j: int) -> float:  # TPR of the rule at the j-th largest non-member score
        f = float(beta.median(j, n_neg + 1 - j))
        return float(norm.sf(norm.isf(f) - mu))

    low = 0.0
    if j_below >= 1:
        low = 1.0 - float(_cp_upper(n_pos * (1.0 - tpr_at(j_below)), n_pos, a))
    high = 1.0 if j_above > n_neg else float(_cp_upper(n_pos * tpr_at(j_above), n_pos, a))
    return 0.5 * (high - low)


@dataclass(frozen=True)
class Plan:
    """One row of `lit-mia plan`: the sizes and what they achieve under the assumptions."""

    ask: str
    members: int | None
    nonmembers: int | None
    canaries: int | None
    achieved: dict[str, float]
    assumes: str


def tpr_plan(
    fpr: float,
    tpr: float,
    half_width: float,
    ci_level: float = 0.95,
    nonmembers: int | None = None,
    max_n: int = 10**8,
) -> Plan:
    """Members and non-members for TPR at ``fpr`` with a median interval half-width <= the
    target: non-members >= MIN_EXPECTED_FP / fpr (or ``nonmembers`` when fixed); then the
    pair with the fewest samples in all over a geometric grid of non-member counts."""
    n_min = math.ceil(MIN_EXPECTED_FP / fpr - 1e-9)
    if nonmembers is not None and nonmembers < n_min:
        raise ConfigError(
            f"nonmembers must be >= {n_min} for TPR at FPR {fpr:g} (fewer than "
            f"{MIN_EXPECTED_FP} expected false positives: not estimable), got {nonmembers}"
        )
    grid = [nonmembers] if nonmembers else [int(n_min * 2 ** (k / 4)) for k in range(48)]
    best: tuple[int, int] | None = None
    for n_neg in grid:
        if n_neg > max_n or (best and n_neg >= sum(best)):
            break
        if tpr_half_width(max_n, n_neg, fpr, tpr, ci_level) > half_width:
            continue  # the non-members' FPR spread alone is wider: more of them
        n_pos = _smallest(
            lambda n, q=n_neg: tpr_half_width(n, q, fpr, tpr, ci_level) <= half_width, 2, max_n
        )
        if n_pos is not None and (best is None or n_pos + n_neg < sum(best)):
            best = (n_pos, n_neg)
    if best is None:
        fixed = f" with nonmembers={nonmembers}" if nonmembers else f" below max_n={max_n:g}"
        raise ConfigError(
            f"half_width={half_width:g} of TPR at FPR {fpr:g} is not reached{fixed}: "
            f"allow a wider half_width or more nonmembers"
        )
    n_pos, n_neg = best
    hw = tpr_half_width(n_pos, n_neg, fpr, tpr, ci_level)
    return Plan(
        f"TPR@FPR={fpr:g} ±{half_width:g}",
        n_pos,
        n_neg,
        None,
        {"median_half_width": hw},
        f"binormal ROC through TPR {tpr:g}; {ci_level:.0%} interval; median half-width; "
        f"non-members >= {MIN_EXPECTED_FP}/FPR",
    )


# --------------------------------------------------------------------------- ΔAUC


def hanley_mcneil_var(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) variance of the empirical AUC."""
    q1, q2 = auc / (2.0 - auc), 2.0 * auc**2 / (1.0 + auc)
    num = auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)
    return num / (n_pos * n_neg)


def delta_auc_power(n: int, auc1: float, auc2: float, r: float, alpha: float) -> float:
    """Power of the two-sided z-test of AUC₁ = AUC₂ with n members and n non-members."""
    v1, v2 = hanley_mcneil_var(auc1, n, n), hanley_mcneil_var(auc2, n, n)
    sd = math.sqrt(max(v1 + v2 - 2.0 * r * math.sqrt(v1 * v2), 1e-300))
    z = norm.isf(alpha / 2)
    d = abs(auc2 - auc1) / sd
    return float(norm.sf(z - d) + norm.cdf(-z - d))


def delta_auc_plan(
    auc: float, delta_auc: float, r: float, alpha: float, power: float, max_n: int = 10**8
) -> Plan:
    """n members and n non-members (per target) for ``delta_auc_power`` >= ``power``."""
    auc2 = auc + delta_auc
    n = _smallest(lambda k: delta_auc_power(k, auc, auc2, r, alpha) >= power, 2, max_n)
    if n is None:
        raise ConfigError(f"delta_auc={delta_auc:g} needs more than max_n={max_n:g} per class")
    design = f"same samples, r={r:g}" if r else "independent samples (r=0)"
    return Plan(
        f"ΔAUC={delta_auc:+g} ({auc:g} vs {auc2:g})",
        n,
        n,
        None,
        {"power": delta_auc_power(n, auc, auc2, r, alpha)},
        f"Hanley-McNeil variance, {design}; two-sided α={alpha:g}",
    )


# --------------------------------------------------------------------------- mechanisms


@dataclass(frozen=True)
class Mechanism:
    """Score laws of non-members (P0) and members (P1) with a known trade-off curve."""

    name: str
    eps: float
    delta: float

    @property
    def shift(self) -> float:
        """Location of P1 (P0 at 0): ε (laplace), μ (gaussian), 1 (rr: scores 0/1)."""
        if self.name == "laplace":
            return self.eps
        if self.name == "gaussian":
            return mu_for_eps(self.eps, self.delta)
        return 1.0

    def rates(self, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(FPR, FNR) of the rules score >= t, for an array of thresholds t."""
        t = np.asarray(t, dtype=np.float64)
        if self.name == "rr":
            p0 = 1.0 / (1.0 + math.exp(self.eps))
            inside = (t > 0.0) & (t <= 1.0)
            fpr = np.where(inside, p0, np.where(t <= 0.0, 1.0, 0.0))
            return fpr, np.where(inside, p0, 1.0 - fpr)
        law = laplace if self.name == "laplace" else norm
        return law.sf(t), law.cdf(t - self.shift)

    def sample(self, rng: np.random.Generator, n: int, member: bool) -> np.ndarray:
        """n scores of members (P1) or non-members (P0)."""
        if self.name == "rr":
            p0 = 1.0 / (1.0 + math.exp(self.eps))
            return (rng.random(n) >= p0 if member else rng.random(n) < p0).astype(np.float64)
        law = rng.laplace if self.name == "laplace" else rng.normal
        return law(self.shift if member else 0.0, 1.0, n)

    def thresholds(self) -> np.ndarray:
        if self.name == "rr":
            return np.array([1.0])
        law = laplace if self.name == "laplace" else norm
        return np.linspace(law.ppf(0.05), law.isf(1e-12) + self.shift, 600)

    def certifiable(self) -> float:
        """The most any sample can certify at δ: sup_t eps_from_rates(FPR(t), FNR(t), δ)."""
        return float(np.max(eps_from_rates(*self.rates(self.thresholds()), self.delta)))

    def guess_accuracy(self, fraction: float) -> float:
        """Accuracy of the one-run guesses on the top ``fraction`` of |score - midpoint|."""
        if self.name == "rr":
            return 1.0 / (1.0 + math.exp(-self.eps))
        law, h = (laplace if self.name == "laplace" else norm), self.shift / 2

        def share(c: float) -> float:
            return float(law.sf(c - h) + law.sf(c + h)) - fraction

        c = 0.0 if fraction >= 1.0 else brentq(share, 0.0, 100.0 + 2 * h)
        return float(law.sf(c - h) / (law.sf(c - h) + law.sf(c + h)))


def mu_for_eps(eps: float, delta: float) -> float:
    """The μ at which μ-GDP is exactly (ε, δ)-DP (root of gdp_delta(ε, μ) = δ)."""
    return float(brentq(lambda mu: gdp_delta(eps, mu) - delta, 1e-9, 60.0))


def check_mechanism(name: str, eps_true: float, delta: float) -> Mechanism:
    if name not in MECHANISMS:
        from lit_mia.errors import unknown_name

        raise unknown_name("mechanism", name, MECHANISMS)
    mech = Mechanism(name, float(eps_true), float(delta))
    if name == "gaussian" and eps_from_mu(60.0, delta) < eps_true:
        raise ConfigError(f"eps_true={eps_true:g} is beyond a Gaussian mechanism at δ={delta:g}")
    return mech


# --------------------------------------------------------------------------- held-out ε


SELECTION_DRAWS = (32, 128, 2 * 10**6)
"""(fewest, most, samples budget): the held-out power averages over draws = budget / n
selection halves, clipped to [fewest, most] (seeded: the plan is reproducible)."""


def _count_range(n: int, p: float) -> np.ndarray:
    """Counts of Binomial(n, p) outside of which lies less than ~1e-15 of the mass."""
    mean, sd = n * p, math.sqrt(n * p * (1.0 - p))
    return np.arange(
        max(0, math.floor(mean - 9 * sd - 5)), min(n, math.ceil(mean + 9 * sd + 15)) + 1
    )


def _binom_pmf(k: np.ndarray, n: int, p: float) -> np.ndarray:
    logc = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
    return np.exp(logc + k * math.log(p) + (n - k) * math.log1p(-p))


def _power_at(t: float, n_eval: int, x: float, mech: Mechanism, alpha: float) -> float:
    """P[eps_from_rates(FPR⁺, FNR⁺, δ) >= x] for the rule score >= t counted on n_eval members
    and n_eval non-members: exact over the binomial counts (_count_range)."""
    fpr, fnr = (min(max(float(r), 1e-300), 1.0 - 1e-16) for r in mech.rates(t))
    fp, fn = _count_range(n_eval, fpr), _count_range(n_eval, fnr)
    fpr_up, fnr_up = _cp_upper(fp, n_eval, alpha / 2), _cp_upper(fn, n_eval, alpha / 2)
    d, ex = mech.delta, math.exp(x)
    # eps_from_rates >= x: FPR⁺ <= (1-δ-FNR⁺)e^-x (member side) or <= 1-δ-FNR⁺e^x (other side)
    limit = np.maximum((1.0 - d - fnr_up) / ex, 1.0 - d - fnr_up * ex)
    k = np.searchsorted(fpr_up, limit * (1 + 1e-12), side="right") - 1  # last fp allowed
    p_fp = np.where(k >= 0, bdtr(fp[np.maximum(k, 0)], n_eval, fpr), 0.0)
    return float(np.sum(_binom_pmf(fn, n_eval, fnr) * p_fp))


def heldout_eps_power(n: int, x: float, mech: Mechanism, alpha: float, draws: int = 0) -> float:
    """P[heldout eps_lb >= x] with n members and n non-members: the selection half's choice
    (heldout.select_threshold on ``draws`` seeded draws of n // 2 scores per class) replayed,
    the evaluation half's counts summed exactly (module docstring). ``draws`` 0: from
    SELECTION_DRAWS."""
    few, most, budget = SELECTION_DRAWS
    draws = draws or min(max(budget // max(n, 1), few), most)
    n_sel, n_eval = n // 2, n - n // 2
    label = np.r_[np.ones(n_sel, bool), np.zeros(n_sel, bool)]
    power = 0.0
    for d in range(draws):
        rng = np.random.default_rng((0x91A, d))
        s = np.r_[mech.sample(rng, n_sel, member=True), mech.sample(rng, n_sel, member=False)]
        t = select_threshold(s, label, "eps", mech.delta)
        power += _power_at(t, n_eval, x, mech, alpha)
    return power / draws


def heldout_eps_plan(
    x: float, mech: Mechanism, alpha: float, power: float, max_n: int = 10**6
) -> Plan:
    """Members = non-members = n for ``heldout_eps_power`` >= ``power``."""
    top = mech.certifiable()
    if x >= top:
        raise ConfigError(
            f"eps={x:g} cannot be certified: a {mech.name} mechanism with eps_true="
            f"{mech.eps:g} is certifiably at most ε={top:.4g} at delta={mech.delta:g}, with "
            f"any number of samples (the bound is a lower bound)"
        )
    n = _smallest(lambda k: heldout_eps_power(k, x, mech, alpha) >= power, 4, max_n, rel=0.01)
    if n is None:
        raise ConfigError(f"eps={x:g} needs more than max_n={max_n:g} members and non-members")
    return Plan(
        f"ε≥{x:g} held-out bound",
        n,
        n,
        None,
        {"power": heldout_eps_power(n, x, mech, alpha)},
        f"{_mech_text(mech)}; {1 - alpha:.0%} lower bound; half chooses the threshold",
    )


def _mech_text(mech: Mechanism) -> str:
    return f"{mech.name} scores, eps_true={mech.eps:g}, δ={mech.delta:g}"


# --------------------------------------------------------------------------- one-run ε


ONE_RUN_DRAWS = (200, 4000, 4 * 10**6)
"""(fewest, most, canaries budget): simulated one-run audits per power evaluation."""


def one_run_critical(m: int, r: int, x: float, delta: float, alpha: float) -> int | None:
    """Fewest correct guesses v of r whose p-value at ε = x is <= α (None: not even r)."""
    if one_run_p_value(m, r, r, x, delta) > alpha:
        return None
    if one_run_p_value(m, r, 0, x, delta) <= alpha:
        return 0
    lo, hi = 0, r  # p(lo) > α >= p(hi): the p-value decreases in v
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if one_run_p_value(m, r, mid, x, delta) <= alpha else (mid, hi)
    return hi


def one_run_correct_draws(m: int, mech: Mechanism, fraction: float, draws: int = 0):
    """(correct counts of ``draws`` simulated audits, guesses r): canaries included with
    probability ½, scored by the mechanism, guessed by metrics.one_run_guesses (seeded)."""
    few, most, budget = ONE_RUN_DRAWS
    draws = draws or min(max(budget // m, few), most)
    rng = np.random.default_rng((0x0E1, m))
    inc = rng.random((draws, m)) < 0.5
    s = np.where(inc, mech.sample(rng, inc.size, True).reshape(inc.shape), 0.0)
    s = np.where(inc, s, mech.sample(rng, inc.size, False).reshape(inc.shape))
    return one_run_guesses(s, inc, fraction)


def one_run_power(m: int, x: float, mech: Mechanism, fraction: float, alpha: float) -> float:
    """P[one_run_eps >= x] with m canaries: the share of simulated audits whose correct
    guesses reach ``one_run_critical`` (the bound's own p-value, exact)."""
    correct, r = one_run_correct_draws(m, mech, fraction)
    v = one_run_critical(m, r, x, mech.delta, alpha)
    return 0.0 if v is None else float(np.mean(correct >= v))


def one_run_plan(
    x: float, mech: Mechanism, fraction: float, alpha: float, power: float, max_m: int = 10**5
) -> Plan:
    """Canaries m for ``one_run_power`` >= ``power`` (module docstring)."""
    acc = mech.guess_accuracy(fraction)
    q = 1.0 / (1.0 + math.exp(-x))
    if acc <= q or 2.0 * mech.delta >= alpha * fraction * (acc - q):
        limit = 2.0 * mech.delta / (fraction * (acc - q)) if acc > q else math.inf
        raise ConfigError(
            f"eps={x:g} cannot be certified by a one-run audit at delta={mech.delta:g}: with "
            f"guesses right at {acc:.4g} (guess_fraction={fraction:g}) the p-value tends to "
            f"2δ/(f·(accuracy - e^x/(1+e^x))) = {limit:.3g} > alpha={alpha:g} as canaries grow, "
            f"for any number of canaries"
        )

    def ok(m: int) -> bool:
        return one_run_power(m, x, mech, fraction, alpha) >= power

    m = _smallest(ok, 4, max_m, rel=0.01)
    if m is None:
        raise ConfigError(f"eps={x:g} needs more than {max_m:g} canaries in a one-run audit")
    return Plan(
        f"ε≥{x:g} one-run audit",
        None,
        None,
        m,
        {"power": one_run_power(m, x, mech, fraction, alpha), "accuracy": acc},
        f"{_mech_text(mech)}; guesses {fraction:g} of canaries (accuracy {acc:.3f}); "
        f"{1 - alpha:.0%} lower bound",
    )


__all__ = [
    "MECHANISMS",
    "Mechanism",
    "Plan",
    "check_mechanism",
    "delta_auc_plan",
    "delta_auc_power",
    "hanley_mcneil_var",
    "heldout_eps_plan",
    "heldout_eps_power",
    "mu_for_eps",
    "one_run_correct_draws",
    "one_run_critical",
    "one_run_plan",
    "one_run_power",
    "tpr_half_width",
    "tpr_plan",
]
