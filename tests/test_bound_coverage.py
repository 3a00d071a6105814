"""Coverage by simulation with a known truth (issue 23): every lower bound stays below the true
ε / μ, and every interval covers its target, at least as often as it claims (minus Monte Carlo
slack: the 0.1% binomial quantile of the failure count), and the no-signal bounds stay at 0.
Seeds fixed; each test runs in about a second. Each test also shows its repetitions can fail
a broken bound: the old max-over-thresholds ε bound fails the same no-signal check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, norm

from lit_mia import metrics as M
from lit_mia.metrics.one_run import one_run_eps, one_run_p_value
from lit_mia.metrics.privacy import clopper_pearson_upper, eps_from_rates
from lit_mia.metrics.roc import _roc_counts

REPS = 300
ALPHA = 0.05


def most_failures(reps: int, rate: float) -> int:
    """Failures allowed for a procedure failing at most ``rate``: the 99.9% binomial quantile."""
    return int(binom.ppf(0.999, reps, rate))


def labels(n_pos: int, n_neg: int) -> np.ndarray:
    return np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]


def naive_eps(s, m, alpha, delta):
    """The pre-issue-23 bound: CP rates at every threshold, max over thresholds (unsound)."""
    _, tp, fp = _roc_counts(s, m)
    fpr = clopper_pearson_upper(fp, int(fp[-1]), alpha)
    fnr = clopper_pearson_upper(int(tp[-1]) - tp, int(tp[-1]), alpha)
    return float(np.max(eps_from_rates(fpr, fnr, delta)))


def test_no_signal_bounds_are_zero_in_at_most_alpha_of_runs():
    rng = np.random.default_rng(230)
    m = labels(200, 200)
    eps_pos = mu_pos = naive_pos = 0
    for rep in range(REPS):
        s = rng.normal(size=m.size)
        b = M.heldout_bounds(s, m, ALPHA, 1e-5, seed=rep)
        eps_pos += b["eps_lb"] > 0
        mu_pos += b["mu_lb"] > 0
        naive_pos += naive_eps(s, m, ALPHA, 1e-5) > 0
    assert eps_pos <= most_failures(REPS, ALPHA)
    assert mu_pos <= most_failures(REPS, ALPHA)
    # the same repetitions reject the old bound: it is > 0 far more often than 5%
    assert naive_pos > most_failures(REPS, ALPHA)


@pytest.mark.parametrize("eps_true", [1.0, 3.0])
def test_laplace_eps_dp_scores_bound_below_the_true_eps(eps_true):
    """Members ~ Laplace(1, 1/ε), non-members ~ Laplace(0, 1/ε): the likelihood ratio is at
    most e^ε, so every test on one score is exactly ε-DP (δ = 0), and the bound must stay
    <= ε in >= 95% of runs. It must also find signal (ε recovered in part)."""
    rng = np.random.default_rng(int(eps_true * 10))
    m = labels(500, 500)
    above, got = 0, []
    for rep in range(REPS):
        s = rng.laplace(m.astype(float), 1.0 / eps_true)
        e = M.heldout_bounds(s, m, ALPHA, 1e-5, seed=rep)["eps_lb"]
        above += e > eps_true
        got.append(e)
    assert above <= most_failures(REPS, ALPHA)
    assert np.median(got) > 0.2 * eps_true


def test_randomized_response_eps_bound_and_one_side():
    """Randomized response with ε = 2: score 1 with prob e^ε/(1+e^ε) for members, 1/(1+e^ε)
    for non-members (ties everywhere: two distinct scores)."""
    eps_true = 2.0
    p = 1 / (1 + math.exp(-eps_true))
    rng = np.random.default_rng(7)
    m = labels(400, 400)
    above = 0
    for rep in range(REPS):
        s = (rng.random(m.size) < np.where(m, p, 1 - p)).astype(float)
        above += M.heldout_bounds(s, m, ALPHA, 1e-5, seed=rep)["eps_lb"] > eps_true
    assert above <= most_failures(REPS, ALPHA)


def test_gaussian_mu_bound_below_the_true_mu():
    mu = 1.0
    rng = np.random.default_rng(11)
    m = labels(400, 400)
    above, got = 0, []
    for rep in range(REPS):
        s = rng.normal(size=m.size) + mu * m
        b = M.heldout_bounds(s, m, ALPHA, 1e-5, seed=rep)
        above += b["mu_lb"] > mu
        got.append(b["mu_lb"])
    assert above <= most_failures(REPS, ALPHA)
    assert np.median(got) > 0.3 * mu


@pytest.mark.parametrize(("level", "n_neg"), [(0.01, 2000), (0.001, 20000)])
def test_tpr_at_fpr_interval_covers_the_population_tpr(level, n_neg):
    """Gaussian scores (non-members N(0,1), members N(1,1)): TPR at true FPR = level is
    sf(isf(level) - 1); the 95% interval must cover it in >= 95% (- slack) of runs."""
    rng = np.random.default_rng(int(1 / level))
    m = labels(1000, n_neg)
    key = f"tpr_at_fpr_{level}"
    truth = norm.sf(norm.isf(level) - 1.0)
    miss, width = 0, []
    for _ in range(REPS // 3):
        ci = M.tpr_interval(rng.normal(size=m.size) + m, m, level, 0.95)
        miss += not ci[f"{key}_ci_low"] <= truth <= ci[f"{key}_ci_high"]
        width.append(ci[f"{key}_ci_high"] - ci[f"{key}_ci_low"])
        assert f"{key}_not_estimable" not in ci
    assert miss <= most_failures(REPS // 3, 0.05)
    assert np.median(width) < 0.5  # informative, not [0, 1]


def test_old_tpr_rule_admitted_a_false_positive_the_strict_one_does_not():
    """1,000 non-members at FPR 0.1%: ``<=`` admitted the rule with one false positive."""
    s = np.r_[np.arange(10.0, 20.0), np.arange(1000.0) / 100]
    s[10 + 999] = 100.0  # the top non-member outranks every member
    m = labels(10, 1000)
    assert M.tpr_at_fpr(s, m, 0.001) == 0.0  # one FP = 0.1%, not < 0.1%
    assert M.tpr_at_fpr(s, m, 0.0011) == 1.0
    keys = M.tpr_at_fpr_keys(s, m, 0.0001)
    assert keys["tpr_at_fpr_0.0001_below_resolution"] == 1.0
    assert keys["tpr_at_fpr_0.0001_not_estimable"] == 1.0


def test_heldout_accuracy_and_ppv_intervals_cover_the_rule():
    """Truth of the rule t chosen on the selection half: TPR = sf(t - 1), FPR = sf(t)."""
    rng = np.random.default_rng(5)
    m = labels(300, 300)
    miss_acc = miss_ppv = 0
    for rep in range(REPS):
        s = rng.normal(size=m.size) + m
        out = M.heldout_decision(s, m, 0.95, seed=rep)
        sel = M.split_halves(m, rep)
        t, _ = M.best_threshold(s[sel], m[sel])
        tpr, fpr = norm.sf(t - 1.0), norm.sf(t)
        acc, pv = 0.5 * (tpr + 1 - fpr), float(M.ppv(tpr, fpr, 0.01))
        miss_acc += not out["acc_heldout_ci_low"] <= acc <= out["acc_heldout_ci_high"]
        miss_ppv += not out["ppv_at_prior_0.01_ci_low"] <= pv <= out["ppv_at_prior_0.01_ci_high"]
    assert miss_acc <= most_failures(REPS, 0.05)
    assert miss_ppv <= most_failures(REPS, 0.05)


def test_no_signal_heldout_accuracy_interval_contains_chance():
    rng = np.random.default_rng(9)
    m = labels(200, 200)
    above = 0
    for rep in range(REPS):
        out = M.heldout_decision(rng.normal(size=m.size), m, 0.95, seed=rep)
        above += out["acc_heldout_ci_low"] > 0.5
    assert above <= most_failures(REPS, 0.025)


def test_one_run_matches_steinke_et_al_algorithm_2():
    """m = 500 canaries, r = 100 guesses all right, δ = 1e-3, α = 0.05: the paper's p-value
    (with its 2mδ term) gives ε ≈ 1.82; the pre-issue per-guess (e^ε + δ)/(1 + e^ε) gave 3.49."""
    assert one_run_eps(100, 100, 0.05, 1e-3, m=500) == pytest.approx(1.8162, abs=1e-3)
    # brute force of Algorithm 2's p-value at that ε
    eps, r, v, m, d = 1.8162, 100, 100, 500, 1e-3
    q = math.exp(eps) / (1 + math.exp(eps))
    beta = binom.sf(v - 1, r, q)
    gain = max(sum(binom.pmf(v - j, r, q) for j in range(1, i + 1)) / i for i in range(1, v + 1))
    assert one_run_p_value(m, r, v, eps, d) == pytest.approx(beta + 2 * m * d * gain, rel=1e-9)
    # δ = 0: the pure ε-DP binomial tail, closed form for v = r
    assert one_run_eps(100, 100, 0.05) == pytest.approx(
        math.log(0.05 ** (-1 / 100) - 1) * -1, abs=1e-6
    )


def test_one_run_bound_below_the_true_eps_for_exact_dp_guesses():
    """Each guess right independently with prob e^ε/(1+e^ε) (the worst case of ε-DP)."""
    eps_true, r = 1.0, 200
    rng = np.random.default_rng(3)
    wins = rng.binomial(r, 1 / (1 + math.exp(-eps_true)), REPS)
    above = sum(one_run_eps(int(w), r, ALPHA, 1e-5, m=1000) > eps_true for w in wins)
    assert above <= most_failures(REPS, ALPHA)
