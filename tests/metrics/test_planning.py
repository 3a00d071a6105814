"""The sample-size planner (lit_mia/metrics/planning.py) checked against the project's own
estimators: each planned n reaches its goal in simulation (members and non-members from the
assumed model, seeds fixed) and half of it does not; the searches return the smallest n by
brute force; the helpers match their reference implementations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import norm

from lit_mia.errors import ConfigError
from lit_mia.metrics import planning as P
from lit_mia.metrics.heldout import heldout_bounds, order_statistic_ranks, tpr_interval
from lit_mia.metrics.one_run import one_run_eps, one_run_guesses
from lit_mia.metrics.roc import roc_auc

REPS = 300


def slack(p: float, reps: int = REPS) -> float:
    """Three Monte Carlo standard errors of a fraction p over reps runs."""
    return 3 * math.sqrt(p * (1 - p) / reps)


# --------------------------------------------------------------------------- TPR at FPR


@pytest.mark.parametrize("n", [1, 2, 5, 37, 100, 999, 1000, 4321])
@pytest.mark.parametrize("level", [0.5, 0.05, 0.01, 0.001])
def test_order_ranks_equal_the_intervals_brute_force(n, level):
    assert P.order_ranks(n, level, 0.0125) == order_statistic_ranks(n, level, 0.0125)


def test_tpr_half_width_shrinks_with_members_and_the_plan_is_the_smallest():
    widths = [P.tpr_half_width(n, 5000, 0.01, 0.2, 0.95) for n in (100, 300, 1000, 3000, 10**4)]
    assert all(a > b for a, b in itertools.pairwise(widths))
    plan = P.tpr_plan(0.01, 0.2, 0.05, 0.95, nonmembers=5000)
    assert plan.nonmembers == 5000
    assert P.tpr_half_width(plan.members, 5000, 0.01, 0.2, 0.95) <= 0.05
    assert P.tpr_half_width(plan.members - 1, 5000, 0.01, 0.2, 0.95) > 0.05


def test_tpr_plan_needs_ten_expected_false_positives():
    plan = P.tpr_plan(0.001, 0.1, 0.05)
    assert plan.nonmembers >= 10 / 0.001
    with pytest.raises(ConfigError, match="nonmembers must be >= 1000"):
        P.tpr_plan(0.01, 0.2, 0.05, nonmembers=999)


def _median_half_width(n_pos, n_neg, fpr, tpr, rng, reps=100):
    mu = norm.ppf(tpr) - norm.ppf(fpr)
    m = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    key = f"tpr_at_fpr_{fpr}"
    widths = []
    for _ in range(reps):
        s = np.r_[rng.normal(mu, 1, n_pos), rng.normal(0, 1, n_neg)]
        d = tpr_interval(s, m, fpr)
        widths.append((d[f"{key}_ci_high"] - d[f"{key}_ci_low"]) / 2)
    return float(np.median(widths))


def test_tpr_plan_reaches_its_half_width_in_simulation():
    """The project's tpr_interval on binormal scores with the planned sizes has a median
    half-width at the target (2% slack: 100 runs); with half the members it is wider."""
    plan = P.tpr_plan(0.01, 0.2, 0.05)
    rng = np.random.default_rng(11)
    assert _median_half_width(plan.members, plan.nonmembers, 0.01, 0.2, rng) <= 0.05 * 1.02
    assert _median_half_width(plan.members // 2, plan.nonmembers, 0.01, 0.2, rng) > 0.05 * 1.05


# --------------------------------------------------------------------------- ΔAUC


def _placements(s, m):
    pos, neg = np.sort(s[m]), np.sort(s[~m])
    v10 = (np.searchsorted(neg, s[m], "left") + np.searchsorted(neg, s[m], "right")) / 2 / neg.size
    below = np.searchsorted(pos, s[~m], "left") + np.searchsorted(pos, s[~m], "right")
    return v10, 1.0 - below / 2 / pos.size


def delong_z(s1, s2, m):
    """DeLong, DeLong & Clarke-Pearson (1988) z of AUC₁ - AUC₂ for scores of two models on
    the same samples (reference implementation for the test; independent samples: pass
    disjoint halves and the covariance is zero in expectation)."""
    a10, a01 = _placements(s1, m)
    b10, b01 = _placements(s2, m)
    var = np.cov(a10 - b10).item() / a10.size + np.cov(a01 - b01).item() / a01.size
    return (a10.mean() - b10.mean()) / math.sqrt(var)


def test_hanley_mcneil_matches_the_auc_variance_of_exponential_scores():
    """Hanley & McNeil's formula is exact-in-form for exponential scores: compare it with the
    variance of the project's roc_auc over 400 samples of 60 + 40."""
    rng = np.random.default_rng(3)
    auc, n_pos, n_neg = 0.8, 60, 40
    rate = auc / (1 - auc)  # P[X1 > X0] for Exp(1) members vs Exp(rate) non-members
    m = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    aucs = [
        roc_auc(np.r_[rng.exponential(1, n_pos), rng.exponential(1 / rate, n_neg)], m)
        for _ in range(400)
    ]
    assert np.mean(aucs) == pytest.approx(auc, abs=0.01)
    assert np.var(aucs) == pytest.approx(P.hanley_mcneil_var(auc, n_pos, n_neg), rel=0.2)


def test_delta_auc_plan_is_the_smallest_n_by_brute_force():
    plan = P.delta_auc_plan(0.6, 0.05, 0.3, 0.05, 0.8)
    n = plan.members
    assert P.delta_auc_power(n, 0.6, 0.65, 0.3, 0.05) >= 0.8
    assert all(P.delta_auc_power(k, 0.6, 0.65, 0.3, 0.05) < 0.8 for k in range(n - 20, n))
    assert plan.nonmembers == n
    unpaired = P.delta_auc_plan(0.6, 0.05, 0.0, 0.05, 0.8).members
    assert n < unpaired  # positively correlated estimates need fewer samples


def _binormal_pair(n, auc1, auc2, rho, rng):
    mu1, mu2 = (math.sqrt(2) * norm.ppf(a) for a in (auc1, auc2))
    cov = [[1, rho], [rho, 1]]
    pos = rng.multivariate_normal([mu1, mu2], cov, n)
    neg = rng.multivariate_normal([0, 0], cov, n)
    return np.r_[pos[:, 0], neg[:, 0]], np.r_[pos[:, 1], neg[:, 1]]


@pytest.mark.parametrize("rho", [0.0, 0.7])
def test_delta_auc_plan_reaches_its_power_in_simulation(rho):
    """Binormal scores, AUC 0.6 vs 0.65: the paired DeLong test (score correlation rho = 0.7
    between the two models; independent samples for rho = 0) rejects in >= 80% of the runs at the
    planned n (r measured by a pilot), in clearly fewer at half of it."""
    rng = np.random.default_rng(int(rho * 10) + 5)
    if rho:
        pilot = [_binormal_pair(400, 0.6, 0.65, rho, rng) for _ in range(200)]
        m = np.r_[np.ones(400, bool), np.zeros(400, bool)]
        a = np.array([[roc_auc(s1, m), roc_auc(s2, m)] for s1, s2 in pilot])
        r = float(np.corrcoef(a.T)[0, 1])
    else:
        r = 0.0
    n = P.delta_auc_plan(0.6, 0.05, r, 0.05, 0.8).members

    def power(n):
        m = np.r_[np.ones(n, bool), np.zeros(n, bool)]
        hits = 0
        for _ in range(REPS):
            s1, s2 = _binormal_pair(n, 0.6, 0.65, rho, rng)
            if not rho:  # independent samples: the second target gets its own draw
                s2 = _binormal_pair(n, 0.6, 0.65, 0.0, rng)[1]
            hits += abs(delong_z(s1, s2, m)) > norm.isf(0.025)
        return hits / REPS

    assert power(n) >= 0.8 - slack(0.8)
    assert power(n // 2) < 0.8 - slack(0.8)


# --------------------------------------------------------------------------- held-out ε


def _eps_hits(mech, n, x, rng, reps=REPS):
    m = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    hits = 0
    for i in range(reps):
        s = np.r_[mech.sample(rng, n, True), mech.sample(rng, n, False)]
        hits += heldout_bounds(s, m, 0.05, mech.delta, seed=i)["eps_lb"] >= x
    return hits / reps


@pytest.mark.parametrize(
    ("name", "eps_true", "x"),
    [("laplace", 2.0, 1.0), pytest.param("rr", 2.0, 1.0, marks=pytest.mark.slow)],
)
def test_heldout_plan_reaches_its_power_in_simulation(name, eps_true, x):
    """The project's heldout_bounds on scores of an exactly eps_true-DP mechanism reaches
    eps_lb >= x in >= 80% of the runs at the planned n, and in well under it at n/2."""
    mech = P.check_mechanism(name, eps_true, 1e-5)
    plan = P.heldout_eps_plan(x, mech, 0.05, 0.8)
    assert plan.members == plan.nonmembers
    assert plan.achieved["power"] >= 0.8
    rng = np.random.default_rng(7)
    assert _eps_hits(mech, plan.members, x, rng) >= 0.8 - slack(0.8)
    assert _eps_hits(mech, plan.members // 2, x, rng) < 0.8 - slack(0.8)


def test_no_sample_certifies_beyond_the_mechanism():
    lap = P.check_mechanism("laplace", 2.0, 1e-5)
    assert lap.certifiable() == pytest.approx(2.0, abs=1e-3)
    rr = P.check_mechanism("rr", 2.0, 0.01)
    p0 = 1 / (1 + math.e**2)
    assert rr.certifiable() == pytest.approx(math.log((1 - 0.01 - p0) / p0))
    gauss = P.check_mechanism("gaussian", 2.0, 1e-5)
    assert gauss.certifiable() == pytest.approx(2.0, abs=0.02)
    with pytest.raises(ConfigError, match="cannot be certified"):
        P.heldout_eps_plan(rr.certifiable() + 1e-6, rr, 0.05, 0.8)


def test_mu_for_eps_inverts_eps_from_mu():
    from lit_mia.metrics.privacy import eps_from_mu

    for mu in (0.3, 1.0, 2.5):
        assert P.mu_for_eps(eps_from_mu(mu, 1e-5), 1e-5) == pytest.approx(mu, rel=1e-6)


# --------------------------------------------------------------------------- one-run ε


def test_one_run_critical_is_the_fewest_correct_guesses_that_certify():
    m, r, x = 500, 100, 1.0
    v = P.one_run_critical(m, r, x, 1e-5, 0.05)
    assert one_run_eps(v, r, 0.05, 1e-5, m) >= x
    assert one_run_eps(v - 1, r, 0.05, 1e-5, m) < x


def test_guess_accuracy_matches_the_auditors_guesses():
    rng = np.random.default_rng(2)
    for name, eps in (("laplace", 2.0), ("gaussian", 3.0), ("rr", 1.0)):
        mech = P.check_mechanism(name, eps, 1e-5)
        inc = rng.random(200_000) < 0.5
        s = np.where(inc, mech.sample(rng, inc.size, True), mech.sample(rng, inc.size, False))
        correct, guesses = one_run_guesses(s, inc, 0.2)
        assert correct / guesses == pytest.approx(mech.guess_accuracy(0.2), abs=0.01), name


def test_one_run_plan_reaches_its_power_in_simulation():
    """m canaries of a Laplace eps_true = 2 mechanism, each included with probability ½, the
    auditor's one_run_guesses and one_run_eps: ε >= 1 in >= 80% of the audits at the planned
    m, well under at m/2."""
    mech = P.check_mechanism("laplace", 2.0, 1e-5)
    plan = P.one_run_plan(1.0, mech, 0.2, 0.05, 0.8)
    rng = np.random.default_rng(9)

    def power(m):  # one_run_eps >= 1 iff correct >= the critical count (tested above)
        v = P.one_run_critical(m, 2 * max(1, round(0.2 * m / 2)), 1.0, 1e-5, 0.05)
        hits = 0
        for _ in range(REPS):
            inc = rng.random(m) < 0.5
            s = np.where(inc, mech.sample(rng, m, True), mech.sample(rng, m, False))
            hits += one_run_guesses(s, inc, 0.2)[0] >= v
        return hits / REPS

    m, r = plan.canaries, 2 * max(1, round(0.2 * plan.canaries / 2))
    v = P.one_run_critical(m, r, 1.0, 1e-5, 0.05)
    assert one_run_eps(v, r, 0.05, 1e-5, m) >= 1.0 > one_run_eps(v - 1, r, 0.05, 1e-5, m)
    assert power(plan.canaries) >= 0.8 - slack(0.8)
    assert power(plan.canaries // 2) < 0.8 - slack(0.8)


def test_one_run_refuses_what_no_number_of_canaries_certifies():
    """At δ = 1e-3 the 2mδ term keeps the p-value above 2δ/(f·(acc - q)) for every m."""
    mech = P.check_mechanism("laplace", 8.0, 1e-3)
    with pytest.raises(ConfigError, match="for any number of canaries"):
        P.one_run_plan(6.0, mech, 0.2, 0.05, 0.8)
    acc, q = mech.guess_accuracy(0.2), 1 / (1 + math.exp(-6.0))
    from lit_mia.metrics.one_run import one_run_p_value

    for m in (10**3, 10**4, 10**5):  # even every guess right does not get below α
        r = P.one_run_correct_draws(m, mech, 0.2, draws=1)[1]
        assert one_run_p_value(m, r, r, 6.0, 1e-3) > 0.05
    assert 0.05 * 0.2 * (acc - q) <= 2e-3
