"""ε / Gaussian-DP μ lower bounds and PPV (lit_mia/metrics/privacy.py) on synthetic ROCs with
known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from lit_mia import metrics
from lit_mia.errors import ConfigError
from lit_mia.metrics import heldout, privacy


def test_clopper_pearson_matches_closed_forms_and_scipy():
    n, alpha = 200, 0.05
    # k = 0: the exact bound is 1 - alpha^(1/n); k = n: 1
    assert privacy.clopper_pearson_upper(0, n, alpha) == pytest.approx(1 - alpha ** (1 / n))
    assert privacy.clopper_pearson_upper(n, n, alpha) == 1.0
    assert privacy.clopper_pearson_lower(0, n, alpha) == 0.0
    for k in (1, 7, 100, 199):
        # scipy's exact two-sided interval at level 1 - 2 alpha has one-sided 1 - alpha ends
        ci = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
        assert privacy.clopper_pearson_upper(k, n, alpha) == pytest.approx(ci.high, rel=1e-9)
        assert privacy.clopper_pearson_lower(k, n, alpha) == pytest.approx(ci.low, rel=1e-9)


def test_chance_scores_give_zero_bounds():
    rng = np.random.default_rng(0)
    s = rng.normal(size=4000)
    m = rng.random(4000) < 0.5
    # with no signal no threshold certifies anything beyond what CP slack allows (~0)
    assert heldout.eps_lb(s, m) < 0.15
    assert heldout.mu_lb(s, m) < 0.1
    tied = np.zeros(100)
    mm = np.r_[np.ones(50), np.zeros(50)]
    assert heldout.eps_lb(tied, mm) == 0.0 and heldout.mu_lb(tied, mm) == 0.0


def test_mu_lb_recovers_gaussian_shift_from_below():
    """Scores N(mu, 1) for members, N(0, 1) for non-members are exactly mu-GDP; the bound is
    below mu and close to it with many samples."""
    rng = np.random.default_rng(1)
    mu, n = 1.0, 20000
    s = np.r_[rng.normal(mu, 1, n), rng.normal(0, 1, n)]
    m = np.r_[np.ones(n), np.zeros(n)]
    got = heldout.mu_lb(s, m, 0.05)
    assert mu - 0.15 < got < mu + 0.02  # CP at 95% and max over thresholds: just below mu
    # and the eps from it never exceeds the true eps of mu-GDP by more than sampling slack
    assert privacy.eps_from_mu(got, 1e-5) < privacy.eps_from_mu(mu + 0.02, 1e-5)


def test_gdp_conversion_known_values():
    # Dong, Roth, Su: 1-GDP is (eps, delta(eps)); the root of delta(eps) = d inverts it
    for mu in (0.5, 1.0, 2.0):
        for eps in (0.5, 1.0, 3.0):
            d = privacy.gdp_delta(eps, mu)
            if d > 1e-12:
                assert privacy.eps_from_mu(mu, d) == pytest.approx(eps, abs=1e-6)
    assert privacy.eps_from_mu(0.0, 1e-5) == 0.0
    e = [privacy.eps_from_mu(mu, 1e-5) for mu in (0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(e, e[1:], strict=False))
    # known value: 1-GDP at delta = 1e-5 is about eps = 4.4 (Dong et al. Fig. / opacus prv)
    assert 4.0 < privacy.eps_from_mu(1.0, 1e-5) < 4.8


def test_eps_from_rates_edges():
    assert privacy.eps_from_rates(0.5, 0.5, 1e-5) == 0.0
    assert privacy.eps_from_rates(0.9, 0.9, 1e-5) == 0.0  # worse than chance: nothing
    assert privacy.eps_from_rates(0.1, 0.5, 0.0) == pytest.approx(math.log(5))
    assert privacy.eps_from_rates(0.5, 0.1, 0.0) == pytest.approx(math.log(5))  # symmetric


def test_ppv_formula_and_prior_effect():
    assert privacy.ppv(0.5, 0.05, 0.01) == pytest.approx(0.005 / (0.005 + 0.99 * 0.05))
    assert privacy.ppv(0.5, 0.05, 0.5) == pytest.approx(0.5 / 0.55)
    assert privacy.ppv(0.0, 0.0, 0.1) == 0.0
    assert privacy.ppv(0.3, 0.3, 0.1) == pytest.approx(0.1)  # chance decision: PPV = prior
    with pytest.raises(ConfigError, match="prior"):
        privacy.ppv(0.5, 0.1, 1.0)


@pytest.mark.parametrize(("alpha", "delta", "key"), [(0.0, 1e-5, "alpha"), (0.05, 1.0, "delta")])
def test_bad_alpha_delta_one_line(alpha, delta, key):
    s, m = np.r_[1.0, 0.0], np.r_[1, 0]
    with pytest.raises(ConfigError, match=f"attack.{key} must be in \\(0, 1\\)") as e:
        heldout.eps_lb(s, m, alpha, delta)
    assert "\n" not in str(e.value)


def test_attack_metrics_reports_bounds_and_ppv():
    rng = np.random.default_rng(2)
    n = 500
    s = np.r_[rng.normal(1.5, 1, n), rng.normal(0, 1, n)]
    m = np.r_[np.ones(n), np.zeros(n)]
    out = metrics.attack_metrics(s, m, alpha=0.05, delta=1e-5)
    assert out["eps_lb"] == pytest.approx(heldout.eps_lb(s, m, 0.05, 1e-5))
    assert out["mu_lb"] == pytest.approx(heldout.mu_lb(s, m, 0.05))
    assert out["eps_lb_gdp"] == pytest.approx(privacy.eps_from_mu(out["mu_lb"], 1e-5))
    assert (
        out["ppv_at_prior_0.01_ci_low"]
        <= out["ppv_at_prior_0.01"]
        <= out["ppv_at_prior_0.01_ci_high"]
    )
    # balanced accuracy well above chance, yet at a 1% prior most "members" are wrong
    assert out["acc_best"] > 0.7 and out["ppv_at_prior_0.01"] < 0.1 < out["ppv_at_prior_0.1"]
    ss = np.r_[rng.normal(1.5, 1, n), rng.normal(0, 1, n)]
    cal = metrics.attack_metrics(s, m, shadow_scores=ss, shadow_is_member=m)
    assert 0 < cal["ppv_at_prior_0.1_calibrated"] < 1
    with pytest.raises(ConfigError, match="attack.delta"):
        metrics.attack_metrics(s, m, delta=0.0)
