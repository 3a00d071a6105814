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


def _correlated_scores(rng, n, shift_a, shift_b, rho=0.8):
    """Two attacks' scores on the same n members + n non-members: shared per-sample noise
    (correlation rho), members shifted by shift_a / shift_b. True AUC = Φ(shift / √2)."""
    m = np.r_[np.ones(n, int), np.zeros(n, int)]
    common = rng.normal(size=2 * n)
    own_a, own_b = rng.normal(size=2 * n), rng.normal(size=2 * n)
    sa = np.sqrt(rho) * common + np.sqrt(1 - rho) * own_a + shift_a * m
    sb = np.sqrt(rho) * common + np.sqrt(1 - rho) * own_b + shift_b * m
    idx = np.arange(2 * n)
    return (idx, m, sa), (idx, m, sb)


def test_paired_difference_is_a_minus_b_and_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    a, b = _correlated_scores(rng, 300, 0.6, 0.3)
    d, lo, hi, n_in, n_out = iv.paired_difference("auc", a, b)
    assert d == pytest.approx(roc_auc_score(a[1], a[2]) - roc_auc_score(b[1], b[2]), abs=1e-12)
    assert d > 0
    assert lo < d < hi
    assert (n_in, n_out) == (300, 300)
    # reversed operands: the same interval mirrored
    d2, lo2, hi2, *_ = iv.paired_difference("auc", b, a)
    assert (d2, lo2, hi2) == pytest.approx((-d, -hi, -lo), abs=1e-12)


def test_paired_difference_pairs_by_index_and_refuses_other_samples():
    rng = np.random.default_rng(5)
    a, b = _correlated_scores(rng, 100, 0.5, 0.4)
    perm = rng.permutation(200)  # the same samples listed in another order
    shuffled = (b[0][perm], b[1][perm], b[2][perm])
    assert iv.paired_difference("auc", a, shuffled) == pytest.approx(
        iv.paired_difference("auc", a, b), abs=1e-12
    )
    other = (b[0] + 1000, b[1], b[2])  # other samples: not pairable
    assert iv.paired_difference("auc", a, other) is None
    half = (b[0][:150], b[1][:150], b[2][:150])  # a subset: not the same statistic
    assert iv.paired_difference("auc", a, half) is None


def test_paired_difference_coverage_and_size_by_simulation():
    """Known truth: ΔAUC = Φ(0.5/√2) - Φ(0.3/√2); the paired interval covers it ~95% of the
    time, and under no difference its lower end clears 0 in at most ~2.5% of runs, while it is
    narrower than the independent combination of the two bootstrap-like standard errors."""
    truth = stats.norm.cdf(0.5 / np.sqrt(2)) - stats.norm.cdf(0.3 / np.sqrt(2))
    rng = np.random.default_rng(6)
    cover, false_pass, ratio = [], [], []
    for _ in range(300):
        a, b = _correlated_scores(rng, 200, 0.5, 0.3)
        _, lo, hi, *_ = iv.paired_difference("auc", a, b)
        cover.append(lo < truth < hi)
        a0, b0 = _correlated_scores(rng, 200, 0.4, 0.4)
        _d0, lo0, hi0, *_ = iv.paired_difference("auc", a0, b0)
        false_pass.append(lo0 > 0)
        from lit_mia.metrics.delong import auc_interval

        ia, ib = auc_interval(a0[2], a0[1]), auc_interval(b0[2], b0[1])
        se_a = iv.se_from_interval(ia["auc_ci_low"], ia["auc_ci_high"])
        se_b = iv.se_from_interval(ib["auc_ci_low"], ib["auc_ci_high"])
        ulo, uhi = iv.difference_interval(ia["auc"], se_a, ib["auc"], se_b)
        ratio.append((hi0 - lo0) / (uhi - ulo))
    assert 0.92 < _coverage(cover) < 0.98
    assert _coverage(false_pass) < 0.05
    assert np.median(ratio) < 0.7  # correlation 0.8: the paired interval is much narrower


def test_paired_tpr_difference_orientation():
    rng = np.random.default_rng(7)
    a, b = _correlated_scores(rng, 500, 1.5, 0.2)
    from lit_mia.metrics import tpr_at_fpr

    d, lo, hi, *_ = iv.paired_difference("tpr_at_fpr_0.01", a, b)
    assert d == pytest.approx(tpr_at_fpr(a[2], a[1], 0.01) - tpr_at_fpr(b[2], b[1], 0.01))
    assert lo > 0
    assert lo <= d <= hi


def test_scored_key():
    assert iv.scored_key("attack/ia/auc") == ("ia", "auc")
    assert iv.scored_key("attack/lira/tpr_at_fpr_0.001") == ("lira", "tpr_at_fpr_0.001")
    assert iv.scored_key("attack/a_li/acc") is None
    assert iv.scored_key("target/test_acc") is None
