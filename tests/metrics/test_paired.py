"""Paired comparison of two targets (metrics/paired.py): ΔAUC's DeLong variance against the
naive U-statistic formula, the vectorised TPR against metrics.tpr_at_fpr, alignment by index,
and by simulation: size (no difference: p < 0.05 in at most 5% of runs, for ΔAUC and ΔTPR@1%),
coverage of a known ΔAUC (>= 93%), and power against a real difference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, norm

from lit_mia import metrics
from lit_mia.errors import ConfigError
from lit_mia.metrics import paired
from tests.metrics.test_delong import naive_delong

REPS = 300


def allowed(rate: float) -> int:
    return int(binom.ppf(0.999, REPS, rate))


def two_targets(rng, n: int, da: float, db: float, rho: float = 0.5):
    """Binormal scores of two targets on the same n members and n non-members, correlated
    (rho) through a shared per-sample term: AUC = Φ(d / √2)."""
    m = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    z = rng.normal(size=2 * n)
    sa = np.sqrt(rho) * z + np.sqrt(1 - rho) * rng.normal(size=2 * n) + da * m
    sb = np.sqrt(rho) * z + np.sqrt(1 - rho) * rng.normal(size=2 * n) + db * m
    return sa, sb, m


def test_delta_auc_variance_is_the_naive_paired_u_statistic_variance():
    sa, sb, m = two_targets(np.random.default_rng(1), 45, 0.3, 0.9)
    r = paired.paired_comparison(sa, sb, m, n_resamples=100)
    auc, cov = naive_delong(np.stack([sa, sb]), m)
    assert r["delta_auc"] == pytest.approx(auc[1] - auc[0], abs=1e-12)
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert r["delta_auc_se"] == pytest.approx(se, rel=1e-10)
    assert r["delta_auc_p"] == pytest.approx(2 * norm.sf(abs(auc[1] - auc[0]) / se), rel=1e-9)
    assert r["auc_a"] == pytest.approx(metrics.roc_auc(sa, m), abs=1e-12)
    key = "delta_tpr_at_fpr_0.01"
    want = metrics.tpr_at_fpr(sb, m, 0.01) - metrics.tpr_at_fpr(sa, m, 0.01)
    assert r[key] == pytest.approx(want, abs=1e-12)
    assert r[f"{key}_ci_low"] <= r[f"{key}_ci_high"]


@pytest.mark.parametrize("n_neg", [50, 99, 100, 1000])
def test_vectorised_tpr_matches_tpr_at_fpr_with_ties(n_neg):
    rng = np.random.default_rng(n_neg)
    for level in (0.01, 0.05, 0.1):
        pos = np.round(rng.normal(1, 1, size=(5, 80)), 1)
        neg = np.round(rng.normal(0, 1, size=(5, n_neg)), 1)
        got = paired.tpr_rows(pos, neg, level)
        m = np.r_[np.ones(80, bool), np.zeros(n_neg, bool)]
        want = [metrics.tpr_at_fpr(np.r_[p, q], m, level) for p, q in zip(pos, neg, strict=True)]
        np.testing.assert_allclose(got, want)


def test_no_difference_rejects_in_at_most_five_percent():
    rng = np.random.default_rng(2)
    rej_auc = rej_tpr = 0
    for rep in range(REPS):
        sa, sb, m = two_targets(rng, 250, 0.8, 0.8)
        r = paired.paired_comparison(sa, sb, m, n_resamples=400, seed=rep)
        rej_auc += r["delta_auc_p"] < 0.05
        rej_tpr += r["delta_tpr_at_fpr_0.01_p"] < 0.05
    assert rej_auc <= allowed(0.05)
    assert rej_tpr <= allowed(0.05)


def test_interval_covers_a_known_delta_auc_and_the_test_has_power():
    rng = np.random.default_rng(3)
    true = norm.cdf(1.0 / np.sqrt(2)) - norm.cdf(0.6 / np.sqrt(2))
    covered = found = found_tpr = 0
    for rep in range(REPS):
        sa, sb, m = two_targets(rng, 250, 0.6, 1.0)
        r = paired.paired_comparison(sa, sb, m, n_resamples=200, seed=rep)
        covered += r["delta_auc_ci_low"] <= true <= r["delta_auc_ci_high"]
        found += r["delta_auc_p"] < 0.05
    for rep in range(50):
        sa, sb, m = two_targets(rng, 500, 0.5, 2.0)
        found_tpr += paired.paired_comparison(sa, sb, m, seed=rep)["delta_tpr_at_fpr_0.01_p"] < 0.05
    assert covered >= 0.93 * REPS
    assert found >= 0.8 * REPS  # ΔAUC ≈ 0.094 at 250 + 250 with rho = 0.5
    assert found_tpr >= 45  # TPR@1% 2% vs 20%


def test_unpaired_intervals_that_overlap_hide_a_difference_the_paired_test_finds():
    """The reading the paired test replaces: two separate 95% AUC intervals overlap, yet the
    correlated difference is resolved."""
    sa, sb, m = two_targets(np.random.default_rng(4), 300, 0.7, 0.9, rho=0.9)
    a, b = metrics.delong.auc_interval(sa, m), metrics.delong.auc_interval(sb, m)
    assert a["auc_ci_high"] > b["auc_ci_low"]  # overlap
    assert paired.paired_comparison(sa, sb, m)["delta_auc_ci_low"] > 0


def test_compare_attacks_bonferroni():
    rng = np.random.default_rng(5)
    pairs = {f"a{i}": two_targets(rng, 100, 0.5, 0.5 + 0.2 * i) for i in range(3)}
    out = paired.compare_attacks(pairs, n_resamples=200)
    for r in out.values():
        assert r["delta_auc_p_adjusted"] == pytest.approx(min(1.0, 3 * r["delta_auc_p"]))
        assert r["delta_auc_simultaneous_ci_low"] < r["delta_auc_ci_low"]
        assert r["delta_auc_simultaneous_ci_high"] > r["delta_auc_ci_high"]
    assert paired.compare_attacks({}) == {}


def test_align_pairs_by_index_and_role():
    sa, sb, m = paired.align(
        [5, 3, 9, 7], [1, 1, 0, 0], [0.5, 0.3, 0.9, 0.7],
        [7, 3, 5, 4], [0, 1, 0, 0], [1.7, 1.3, 1.5, 1.4],
    )  # fmt: skip
    np.testing.assert_array_equal(sa, [0.3, 0.7])  # 5 is a member of a, a non-member of b
    np.testing.assert_array_equal(sb, [1.3, 1.7])
    np.testing.assert_array_equal(m, [True, False])
    with pytest.raises(ConfigError, match="roles differ"):
        paired.align(None, [1, 0], [0.1, 0.2], None, [0, 1], [0.1, 0.2])
    s = [1.0, 2.0, 0.0, 0.5]
    with pytest.raises(ConfigError, match="resamples"):
        paired.paired_comparison(s, s, [1, 1, 0, 0], n_resamples=5)
