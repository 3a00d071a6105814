"""Per-class calibrated thresholds (Song & Mittal 2021) and bootstrap CIs (metrics.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lit_mia import metrics as M
from lit_mia.errors import ConfigError


def _classed(seed: int, n: int = 600, k: int = 3):
    """Scores whose member/non-member gap sits at a different level for every class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    is_member = rng.integers(0, 2, n)
    scores = rng.normal(size=n) + 2.0 * is_member + 5.0 * labels
    return scores, is_member, labels


def test_class_thresholds_match_brute_force():
    s, m, lab = _classed(0)
    thr = M.class_thresholds(s, m, lab)
    for c in range(3):
        sel = lab == c
        cands = np.r_[np.unique(s[sel]), np.inf]
        accs = [M.threshold_metrics(s[sel], m[sel], t)["acc"] for t in cands]
        assert M.threshold_metrics(s[sel], m[sel], thr[c])["acc"] == pytest.approx(max(accs))


def test_per_class_calibration_beats_global_when_classes_shift():
    s, m, lab = _classed(1)
    ss, sm, sl = _classed(2)
    per_class = M.attack_metrics(s, m, shadow_scores=ss, shadow_is_member=sm, labels=lab,
                                 shadow_labels=sl)  # fmt: skip
    glob = M.attack_metrics(s, m, shadow_scores=ss, shadow_is_member=sm)
    assert per_class["acc_calibrated"] > glob["acc_calibrated"] + 0.1
    assert per_class["acc_calibrated"] > 0.8


def test_class_without_both_sides_falls_back_to_global():
    s, m, lab = _classed(3)
    ss, sm, sl = _classed(4)
    sm = sm.copy()
    sm[sl == 2] = 1  # shadow class 2 has members only
    thr = M.class_thresholds(ss, sm, sl)
    assert 2 not in thr and {0, 1} <= set(thr)
    out = M.attack_metrics(s, m, shadow_scores=ss, shadow_is_member=sm, labels=lab,
                           shadow_labels=sl)  # fmt: skip
    g = M.best_threshold(ss, sm)[0]
    pred = np.where(lab == 2, s >= g, s >= np.array([thr.get(int(c), g) for c in lab]))
    assert out["acc_calibrated"] == pytest.approx(M.decision_metrics(pred, m)["acc"])


def test_labels_must_come_in_pairs():
    s, m, lab = _classed(0)
    with pytest.raises(ConfigError, match="labels and shadow_labels"):
        M.attack_metrics(s, m, shadow_scores=s, shadow_is_member=m, labels=lab)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_ci_is_the_percentile_interval_as_computed(seed):
    """Brute force: the same stratified resamples (same RNG stream), quantiles of the metric
    recomputed with sklearn, no stretching towards the point estimate."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    m = rng.integers(0, 2, 120)
    s = rng.normal(size=120) + 0.7 * m
    n_res = 60
    ci = M.bootstrap_ci(s, m, n_res, level=0.9, seed=seed)
    pos, neg = np.flatnonzero(m == 1), np.flatnonzero(m == 0)
    draw = np.random.default_rng(seed)
    lab = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    aucs, tprs = [], []
    for _ in range(n_res):
        idx = np.r_[
            pos[draw.integers(0, pos.size, pos.size)], neg[draw.integers(0, neg.size, neg.size)]
        ]
        aucs.append(roc_auc_score(lab, s[idx]))
        tprs.append(M.tpr_at_fpr(s[idx], lab, 0.01))
    assert (ci["auc_ci_low"], ci["auc_ci_high"]) == pytest.approx(np.quantile(aucs, [0.05, 0.95]))
    assert "tpr_at_fpr_0.01_ci_low" not in ci  # Clopper-Pearson instead: metrics/heldout.py


def test_acc_calibrated_gets_an_interval_around_the_fixed_decisions():
    s, m, lab = _classed(5, n=800)
    ss, sm, sl = _classed(6, n=800)
    out = M.attack_metrics(s, m, shadow_scores=ss, shadow_is_member=sm, bootstrap=200)
    lo, hi = out["acc_calibrated_ci_low"], out["acc_calibrated_ci_high"]
    assert lo < out["acc_calibrated"] < hi and hi - lo < 0.15
    # the interval moves with the decisions, not with the oracle: a useless shadow (reversed
    # membership) gives calibrated decisions near chance and an interval around them
    bad = M.attack_metrics(s, m, shadow_scores=-ss, shadow_is_member=sm, bootstrap=200)
    assert bad["acc_calibrated_ci_high"] < lo


def test_bootstrap_ci_narrows_with_n():
    widths = []
    for n in (100, 400, 1600):
        rng = np.random.default_rng(n)
        m = np.r_[np.ones(n // 2, int), np.zeros(n // 2, int)]
        s = rng.normal(size=n) + 0.8 * m
        ci = M.bootstrap_ci(s, m, 200, seed=0)
        widths.append(ci["auc_ci_high"] - ci["auc_ci_low"])
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] > 2.5  # ~ sqrt(16) = 4 in theory


def test_bootstrap_ci_covers_true_auc_most_of_the_time():
    """Coverage of the 95% percentile interval over 200 simulated draws of a known
    distribution (true AUC of N(d,1) vs N(0,1) = Phi(d / sqrt 2)): between 90% and 99%."""
    from scipy.stats import norm

    d = 1.0
    true_auc = norm.cdf(d / np.sqrt(2))
    hits = 0
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        m = np.r_[np.ones(100, int), np.zeros(100, int)]
        s = rng.normal(size=200) + d * m
        ci = M.bootstrap_ci(s, m, 200, level=0.95, seed=seed)
        hits += ci["auc_ci_low"] <= true_auc <= ci["auc_ci_high"]
    assert 180 <= hits <= 198, hits


def test_bootstrap_rejects_bad_arguments():
    s, m = np.array([0.1, 0.9, 0.3, 0.7]), np.array([0, 1, 0, 1])
    with pytest.raises(ConfigError, match="resamples"):
        M.bootstrap_ci(s, m, 1)
    with pytest.raises(ConfigError, match="level"):
        M.bootstrap_ci(s, m, 10, level=1.0)
