"""The intervals a verdict rests on, against references (scipy) and by coverage simulation
with a known truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lit_mia.metrics.intervals import ratio_of_means_ci
from lit_mia.reproduce import intervals as iv


@pytest.mark.parametrize(("k", "n"), [(0, 20), (3, 20), (10, 20), (490, 500), (500, 500)])
def test_wilson_matches_scipy(k, n):
    ref = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert iv.wilson(k / n, n) == pytest.approx((ref.low, ref.high), abs=1e-9)


def test_z95_is_the_normal_quantile():
    assert pytest.approx(stats.norm.ppf(0.975), abs=1e-12) == iv.Z95


def _coverage(hits) -> float:
    return float(np.mean(hits))


def test_difference_interval_covers_independent_estimates():
    """Two independent normal estimates with their own 95% intervals: the combined interval of
    the difference covers the true difference ~95% of the time."""
    rng = np.random.default_rng(0)
    true_a, true_b, se_a, se_b = 0.70, 0.62, 0.02, 0.03
    a = rng.normal(true_a, se_a, 4000)
    b = rng.normal(true_b, se_b, 4000)
    lo, hi = iv.difference_interval(a, se_a, b, se_b)
    cover = _coverage((lo < true_a - true_b) & (true_a - true_b < hi))
    assert 0.94 < cover < 0.96


def test_difference_interval_is_conservative_under_positive_correlation():
    """Estimates on the same samples (correlation 0.6): coverage above 95% (wider than paired)."""
    rng = np.random.default_rng(1)
    se, rho = 0.02, 0.6
    cov = [[se * se, rho * se * se], [rho * se * se, se * se]]
    a, b = rng.multivariate_normal([0.7, 0.65], cov, 4000).T
    lo, hi = iv.difference_interval(a, se, b, se)
    assert _coverage((lo < 0.05) & (hi > 0.05)) > 0.985


def test_bootstrap_intervals_combine_through_their_standard_errors():
    """se read off a normal 95% interval is the se that made it."""
    assert iv.se_from_interval(0.5 - iv.Z95 * 0.03, 0.5 + iv.Z95 * 0.03) == pytest.approx(0.03)


def test_paired_z_interval_covers():
    """Mean of n paired differences, z = mean / (sd / sqrt n): coverage ~95% (n = 200)."""
    rng = np.random.default_rng(2)
    n, truth, hits = 200, 0.004, []
    for _ in range(2000):
        d = rng.normal(truth, 0.03, n)
        z = d.mean() / (d.std(ddof=1) / np.sqrt(n))
        lo, hi = iv.paired_z_interval(float(d.mean()), float(z))
        hits.append(lo < truth < hi)
    assert 0.93 < _coverage(hits) < 0.97


def test_paired_z_interval_without_information():
    assert iv.paired_z_interval(0.1, 0.0) == (-np.inf, np.inf)


def test_binomial_interval_covers():
    rng = np.random.default_rng(3)
    n, p = 500, 0.9
    ks = rng.binomial(n, p, 3000)
    hits = [lo < p < hi for lo, hi in (iv.wilson(k / n, n) for k in ks)]
    assert 0.93 < _coverage(hits) < 0.97


def test_ratio_of_means_ci_covers():
    """Paired bootstrap of mean(a) / mean(b) for correlated positive per-item errors (KL of an
    attack vs a baseline per update set): the population ratio is covered ~95% of the time."""
    rng = np.random.default_rng(4)
    n, hits = 300, []
    truth = 0.5 * 1.0 / 1.0  # E[a] = 0.5 E[base], E[base] = 1
    for rep in range(300):
        base = rng.exponential(1.0, n)
        a = 0.5 * base * rng.uniform(0.5, 1.5, n)
        lo, hi = ratio_of_means_ci(a, base, n_resamples=400, seed=rep)
        hits.append(lo < truth < hi)
    assert 0.91 < _coverage(hits) < 0.98


def test_ratio_of_means_ci_is_paired():
    """Identical per-item ratios: no resampling moves the ratio, the interval is a point."""
    b = np.random.default_rng(5).exponential(1.0, 100)
    lo, hi = ratio_of_means_ci(0.3 * b, b)
    assert lo == pytest.approx(0.3)
    assert hi == pytest.approx(0.3)
