"""lit_mia.metrics against scikit-learn and brute force, on random, tied and hand-made scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from lit_mia import metrics as M
from lit_mia.errors import ConfigError

# --------------------------------------------------------------------------- helpers


def brute_best(scores: np.ndarray, is_member: np.ndarray) -> tuple[float, float]:
    """O(n^2): try every distinct score and +inf, keep the best balanced accuracy."""
    m = is_member.astype(bool)
    best_t, best_acc = math.inf, 0.5
    for t in sorted(set(scores.tolist()), reverse=True):
        pred = scores >= t
        acc = 0.5 * (np.mean(pred[m]) + 1.0 - np.mean(pred[~m]))
        if acc > best_acc + 1e-12:
            best_t, best_acc = t, acc
    return best_t, best_acc


@st.composite
def scored_sets(draw, min_size: int = 2, max_size: int = 60):
    """(scores, is_member) with both classes, wide-magnitude signed scores, ties by rounding."""
    n = draw(st.integers(min_size, max_size))
    labels = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    labels[0], labels[-1] = True, False
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3, 1e12]))
    raw = draw(
        st.lists(
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=n, max_size=n
        )
    )
    decimals = draw(st.sampled_from([None, 0, -3, -5]))  # None: no forced ties
    s = np.array(raw)
    if decimals is not None:
        s = np.round(s, decimals)
    s = s * scale
    # pull members up a little so the sets are not pure noise
    shift = draw(st.sampled_from([0.0, 1e5]))
    s = s + shift * scale * np.array(labels)
    return s, np.array(labels)


# --------------------------------------------------------------------------- vs sklearn

SETTINGS = settings(max_examples=80, deadline=None)


@SETTINGS
@given(scored_sets())
def test_auc_matches_sklearn(data):
    s, m = data
    assert M.roc_auc(s, m) == pytest.approx(skm.roc_auc_score(m, s), abs=1e-12)


@SETTINGS
@given(scored_sets())
def test_roc_curve_matches_sklearn(data):
    s, m = data
    fpr, tpr, thr = M.roc_curve(s, m)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(m, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_array_equal(thr[1:], sk_thr[1:])
    assert thr[0] == math.inf


@SETTINGS
@given(scored_sets())
def test_auprc_matches_sklearn(data):
    s, m = data
    assert M.auprc(s, m) == pytest.approx(skm.average_precision_score(m, s), abs=1e-12)


def _assert_pr_matches_sklearn(s: np.ndarray, m: np.ndarray) -> None:
    """``M.pr_curve`` vs ``skm.precision_recall_curve(m, s)`` (drop_intermediate=False).

    sklearn orders its points by increasing threshold and appends an endpoint (precision 1,
    recall 0) that no threshold attains; ours run by decreasing threshold, one per distinct
    score, with no endpoint. So we compare ours with sklearn's arrays minus the last entry,
    reversed: the same points, in the same (descending-threshold) order, to rounding.
    """
    precision, recall = M.pr_curve(s, m)
    sk_p, sk_r, sk_thr = skm.precision_recall_curve(m, s, drop_intermediate=False)
    assert sk_p[-1] == 1.0
    assert sk_r[-1] == 0.0
    assert precision.shape == recall.shape == (np.unique(s).size,) == sk_thr.shape
    np.testing.assert_allclose(precision, sk_p[:-1][::-1], rtol=1e-15, atol=0)
    np.testing.assert_allclose(recall, sk_r[:-1][::-1], rtol=1e-15, atol=0)
    assert recall[-1] == 1.0
    assert precision[-1] == np.mean(m)


@SETTINGS
@given(scored_sets())
def test_pr_curve_matches_sklearn(data):
    _assert_pr_matches_sklearn(*data)


@pytest.mark.parametrize("seed", range(5))
def test_pr_curve_matches_sklearn_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    m = rng.random(500) < 0.4
    s = rng.integers(0, 25, 500) + 3.0 * m  # ~25-40 distinct scores, both classes in groups
    _assert_pr_matches_sklearn(s, m.astype(int))
    _assert_pr_matches_sklearn(s, m)


def test_pr_curve_hand_made():
    # scores 3 (member), 2 (member, non-member), 1 (non-member); rule score >= t
    precision, recall = M.pr_curve([2.0, 3.0, 1.0, 2.0], [0, 1, 0, 1])
    np.testing.assert_array_equal(precision, [1.0, 2 / 3, 0.5])
    np.testing.assert_array_equal(recall, [0.5, 1.0, 1.0])


@SETTINGS
@given(scored_sets(), st.sampled_from([0.0, 0.001, 0.01, 0.1, 0.37, 1.0]))
def test_tpr_at_fpr_matches_sklearn(data, max_fpr):
    s, m = data
    fpr, tpr, _ = skm.roc_curve(m, s, drop_intermediate=False)
    expected = tpr[(fpr < max_fpr) | (fpr == 0)].max()  # strict <; no false positive always
    assert M.tpr_at_fpr(s, m, max_fpr) == pytest.approx(expected, abs=1e-12)


@SETTINGS
@given(scored_sets())
def test_best_threshold_matches_brute_force(data):
    s, m = data
    t, acc = M.best_threshold(s, m)
    bt, bacc = brute_best(s, m)
    assert acc == pytest.approx(bacc, abs=1e-12)
    assert acc >= 0.5
    # the returned threshold achieves the returned accuracy
    assert M.threshold_metrics(s, m, t)["acc"] == pytest.approx(acc, abs=1e-12)
    # same tie-break (largest threshold among optima) as the brute force
    assert t == bt


@SETTINGS
@given(scored_sets(), st.integers(0, 59))
def test_threshold_metrics_match_sklearn(data, k):
    s, m = data
    t = s[k % s.size]
    got = M.threshold_metrics(s, m, t)
    pred = s >= t
    tpr = skm.recall_score(m, pred)
    fpr = np.mean(pred[~m])
    assert got["precision"] == pytest.approx(skm.precision_score(m, pred, zero_division=0))
    assert got["recall"] == pytest.approx(tpr)
    assert got["tpr"] == pytest.approx(tpr)
    assert got["fpr"] == pytest.approx(fpr)
    assert got["acc"] == pytest.approx(skm.balanced_accuracy_score(m, pred))


def test_threshold_metrics_predict_none_has_zero_precision():
    got = M.threshold_metrics([0.1, 0.9], [0, 1], math.inf)
    assert got == {"acc": 0.5, "precision": 0.0, "recall": 0.0, "tpr": 0.0, "fpr": 0.0}


# --------------------------------------------------------------------------- hand-made sets


def test_perfect_separation():
    s = np.array([-5.0, -4.0, -3.0, 10.0, 11.0, 12.0])
    m = np.array([0, 0, 0, 1, 1, 1])
    assert M.roc_auc(s, m) == 1.0
    t, acc = M.best_threshold(s, m)
    assert (t, acc) == (10.0, 1.0)
    assert M.tpr_at_fpr(s, m, 0.0) == 1.0
    assert M.tpr_at_fpr(s, m, 0.001) == 1.0
    assert M.auprc(s, m) == 1.0
    out = M.attack_metrics(s, m)
    assert out["advantage_best"] == 1.0
    assert out["precision"] == 1.0
    assert out["recall"] == 1.0


def test_reversed_scores():
    s = np.array([10.0, 11.0, 12.0, -5.0, -4.0, -3.0])
    m = np.array([0, 0, 0, 1, 1, 1])
    assert M.roc_auc(s, m) == 0.0
    t, acc = M.best_threshold(s, m)
    assert t == math.inf
    assert acc == 0.5
    assert M.tpr_at_fpr(s, m, 0.01) == 0.0
    out = M.attack_metrics(s, m)
    assert out["acc_best"] == 0.5
    assert out["advantage_best"] == 0.0
    assert out["threshold_best"] == 13.0  # max score + 1, finite for MLflow
    assert out["precision"] == 0.0
    assert out["recall"] == 0.0


def test_all_equal_scores():
    s = np.full(10, 3.0)
    m = np.array([1] * 5 + [0] * 5)
    assert M.roc_auc(s, m) == 0.5
    _, acc = M.best_threshold(s, m)
    assert acc == 0.5
    assert M.tpr_at_fpr(s, m, 0.5) == 0.0
    assert M.auprc(s, m) == 0.5


def test_ties_counted_as_half():
    # one member/non-member pair tied, one member strictly above: AUC = (1 + 0.5) / 2
    s = np.array([1.0, 1.0, 2.0, 0.0])
    m = np.array([1, 0, 1, 0])
    assert M.roc_auc(s, m) == pytest.approx(skm.roc_auc_score(m, s))
    assert M.roc_auc(s, m) == pytest.approx(0.875)


def test_unbounded_scores_are_not_squashed():
    # a sigmoid would map all of these to 0.0 / 1.0 and tie them; the raw order separates them
    s = np.array([-1e300, -1e200, 1e200, 1e300, -1e250, 5e299])
    m = np.array([0, 0, 1, 1, 0, 1])
    assert M.roc_auc(s, m) == 1.0
    assert M.best_threshold(s, m) == (1e200, 1.0)
    out = M.attack_metrics(s, m)
    assert out["auc"] == 1.0
    assert out["tpr_at_fpr_0.001"] == 1.0


def test_loggable_threshold_for_huge_scores():
    # reversed set: best is predict none (+inf); max + 1.0 rounds back to 1e20 in float64
    s = np.array([1e20, 1e20 - 1e5, 0.0, 1.0])
    m = np.array([0, 0, 1, 1])
    assert M.best_threshold(s, m)[0] == math.inf
    out = M.attack_metrics(s, m)
    assert math.isfinite(out["threshold_best"])
    assert out["threshold_best"] > 1e20
    assert M.threshold_metrics(s, m, out["threshold_best"])["fpr"] == 0.0
    top = np.finfo(np.float64).max
    out = M.attack_metrics([top, 0.0], [0, 1])
    assert out["threshold_best"] == top  # cannot go above: still finite for MLflow


@SETTINGS
@given(scored_sets(), st.floats(-1e3, 1e3), st.sampled_from(["shift", "cube", "exp", "scale"]))
def test_monotone_transform_invariance(data, c, kind):
    s, m = data
    s = s / (np.abs(s).max() + 1.0) * 10.0  # keep transforms exact-ish and order-preserving
    s = np.round(s, 3)
    f = {
        "shift": lambda x: x + np.round(c),
        "cube": lambda x: x**3,
        "exp": np.exp,
        "scale": lambda x: 7.0 * x,
    }[kind]
    t = f(s)
    # only meaningful if the transform kept the order (and ties) exactly
    if not np.array_equal(np.argsort(s, kind="stable"), np.argsort(t, kind="stable")):
        return
    if len(np.unique(s)) != len(np.unique(t)):
        return
    assert M.roc_auc(t, m) == M.roc_auc(s, m)
    assert M.best_threshold(t, m)[1] == M.best_threshold(s, m)[1]
    assert M.auprc(t, m) == pytest.approx(M.auprc(s, m))


# --------------------------------------------------------------------------- attack_metrics

KEYS = {
    "auc",
    "acc_best",
    "advantage_best",
    "threshold_best",
    "precision",
    "recall",
    "auprc",
    "tpr_at_fpr_0.01",
    "tpr_at_fpr_0.001",
    "eps_lb",  # metrics/privacy.py (tests/metrics/test_privacy.py)
    "mu_lb",
    "eps_lb_gdp",
    "ppv_at_prior_0.01",
    "ppv_at_prior_0.1",
    "eps_lb_member_side",  # metrics/heldout.py (tests/metrics/test_bound_coverage.py)
    *(f"{k}{e}" for k in ("acc_heldout", "advantage_heldout") for e in ("", "_ci_low", "_ci_high")),
    *(f"ppv_at_prior_{p}_ci_{e}" for p in (0.01, 0.1) for e in ("low", "high")),
    *(f"tpr_at_fpr_{f}_ci_{e}" for f in (0.01, 0.001) for e in ("low", "high")),
    "tpr_at_fpr_0.01_not_estimable",  # 400 non-members: 4 < 10 expected false positives
    "tpr_at_fpr_0.001_not_estimable",
}
CAL_KEYS = {
    "threshold_calibrated",
    "acc_calibrated",
    "advantage_calibrated",
    "precision_calibrated",
    "recall_calibrated",
    "acc_calibrated_shadow",
    "ppv_at_prior_0.01_calibrated",
    "ppv_at_prior_0.1_calibrated",
}


def _gaussian_set(seed: int = 0, n: int = 400, gap: float = 1.0):
    rng = np.random.default_rng(seed)
    m = np.array([1] * n + [0] * n)
    s = rng.normal(size=2 * n) + gap * m
    return s, m


def test_attack_metrics_keys_and_types():
    s, m = _gaussian_set()
    losses = np.exp(-s)
    out = M.attack_metrics(s, m)
    assert set(out) == KEYS | {"tpr_at_fpr_0.001_below_resolution"}  # 400 non-members < 1000
    out = M.attack_metrics(s[200:], m[200:])  # 800 samples, 600 non-members: still below
    assert out["tpr_at_fpr_0.001_below_resolution"] == 1.0
    big, bm = _gaussian_set(n=1000)
    # 1,000 non-members: FPR < 0.1% strictly admits only zero false positives (level <= 1/n)
    assert M.attack_metrics(big, bm)["tpr_at_fpr_0.001_below_resolution"] == 1.0
    assert "tpr_at_fpr_0.01_below_resolution" not in M.attack_metrics(big, bm)
    out = M.attack_metrics(big, bm, losses=np.exp(-big), shadow_scores=big, shadow_is_member=bm)
    # 1,000 non-members: 10 expected false positives at 1% (estimable), 1 at 0.1%
    want = (KEYS - {"tpr_at_fpr_0.01_not_estimable"}) | CAL_KEYS | {"kl_loss"}
    assert set(out) == want | {"tpr_at_fpr_0.001_below_resolution"}
    assert out["acc_calibrated_shadow"] == out["acc_best"]  # shadow = target
    s, m, losses = big, bm, np.exp(-big)
    assert all(type(v) is float and math.isfinite(v) for v in out.values())
    assert out["advantage_best"] == pytest.approx(2 * (out["acc_best"] - 0.5))
    assert out["auc"] == pytest.approx(skm.roc_auc_score(m, s))
    assert out["kl_loss"] == M.loss_kl(losses[m == 1], losses[m == 0])


def test_calibrated_equals_best_when_shadow_is_target():
    s, m = _gaussian_set(seed=3)
    out = M.attack_metrics(s, m, shadow_scores=s, shadow_is_member=m)
    assert out["threshold_calibrated"] == out["threshold_best"]
    assert out["acc_calibrated"] == out["acc_best"]
    assert out["advantage_calibrated"] == out["advantage_best"]
    assert out["precision_calibrated"] == out["precision"]
    assert out["recall_calibrated"] == out["recall"]


def test_calibrated_uses_shadow_threshold():
    s, m = _gaussian_set(seed=1)
    shadow, sm = _gaussian_set(seed=2)
    out = M.attack_metrics(s, m, shadow_scores=shadow, shadow_is_member=sm)
    t, _ = M.best_threshold(shadow, sm)
    assert out["threshold_calibrated"] == t
    assert out["acc_calibrated"] == M.threshold_metrics(s, m, t)["acc"]
    assert out["acc_calibrated"] <= out["acc_best"]


def test_calibrated_predict_none_is_finite_and_predicts_none():
    s = np.array([0.0, 1.0, 2.0, 50.0])
    m = np.array([1, 0, 1, 0])
    shadow = np.array([5.0, 6.0, 1.0, 2.0])  # reversed shadow: best is predict none
    sm = np.array([0, 0, 1, 1])
    out = M.attack_metrics(s, m, shadow_scores=shadow, shadow_is_member=sm)
    assert out["threshold_calibrated"] == 51.0  # above target and shadow scores
    assert out["acc_calibrated"] == 0.5
    assert out["recall_calibrated"] == 0.0


# --------------------------------------------------------------------------- loss_kl


def test_loss_kl_properties():
    rng = np.random.default_rng(0)
    base = rng.exponential(size=5000)
    assert M.loss_kl(base, base) == pytest.approx(0.0, abs=1e-12)
    assert M.loss_kl(np.ones(10), np.ones(20)) == 0.0
    kls = [M.loss_kl(base, rng.exponential(size=5000) + d) for d in (0.0, 0.5, 1.0, 2.0)]
    assert all(k >= 0 for k in kls)
    assert kls[0] < 0.05  # same distribution, sampling noise only
    assert kls == sorted(kls)
    assert kls[-1] > kls[1] + 0.1


def test_loss_kl_is_finite_with_empty_bins_and_directional():
    members = np.zeros(100)
    nonmembers = np.concatenate([np.zeros(50), np.ones(50)])
    kl = M.loss_kl(members, nonmembers, bins=10)
    assert math.isfinite(kl)
    assert kl == pytest.approx(math.log(2), rel=1e-3)
    # reverse direction puts mass where the other histogram is (smoothed) empty: much larger
    assert M.loss_kl(nonmembers, members, bins=10) > 3.0


def test_loss_kl_matches_manual_histogram():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(0.5, 1.2, size=200)
    edges = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 21)
    p = np.histogram(a, edges)[0] / a.size + 1e-6
    q = np.histogram(b, edges)[0] / b.size + 1e-6
    p, q = p / p.sum(), q / q.sum()
    assert M.loss_kl(a, b, bins=20) == pytest.approx(np.sum(p * np.log(p / q)))


# --------------------------------------------------------------------------- scores_table


def test_scores_table():
    csv = M.scores_table([0.5, -1.25], [1, 0], losses=[0.1, 2.0], index=[7, 3])
    assert csv == "index,is_member,score,loss\n7,1,0.5,0.1\n3,0,-1.25,2.0\n"
    csv = M.scores_table([1 / 3, 2.0], [True, True])
    lines = csv.splitlines()
    assert lines[0] == "index,is_member,score"
    assert float(lines[1].split(",")[2]) == 1 / 3
    assert lines[2].startswith("1,1,")


def test_read_scores_table_round_trips_exactly():
    rng = np.random.default_rng(0)
    s, m, idx = rng.normal(size=50), rng.integers(0, 2, 50), rng.permutation(1000)[:50]
    got_idx, got_m, got_s = M.read_scores_table(M.scores_table(s, m, losses=s**2, index=idx))
    assert np.array_equal(got_idx, idx)
    assert np.array_equal(got_m, m)
    assert np.array_equal(got_s, s)  # repr round-trips every float bit for bit
    assert M.read_scores_table("index,is_member,score\n") is None
    assert M.read_scores_table("a,b\n1,2\n") is None


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("scores", "is_member", "match"),
    [
        ([0.1, 0.2, 0.3], [1, 0], "length"),
        ([0.1, 0.2], [1, 1], "both members and non-members"),
        ([0.1, 0.2], [0, 0], "both members and non-members"),
        ([0.1, float("nan")], [1, 0], "NaN"),
        ([0.1, float("inf")], [1, 0], "infinite"),
        ([[0.1, 0.2]], [[1, 0]], "1-D"),
        ([0.1, 0.2], [1, 2], "0/1"),
        ([], [], "empty"),
        (["a", "b"], [1, 0], "numeric"),
    ],
)
@pytest.mark.parametrize(
    "fn",
    [
        M.roc_auc,
        M.best_threshold,
        M.auprc,
        M.attack_metrics,
        M.roc_curve,
        M.pr_curve,
        lambda s, m: M.tpr_at_fpr(s, m, 0.01),
        lambda s, m: M.threshold_metrics(s, m, 0.0),
    ],
)
def test_bad_input_raises(fn, scores, is_member, match):
    with pytest.raises(ConfigError, match=match):
        fn(scores, is_member)


def test_bad_arguments_raise():
    s, m = [0.1, 0.9], [0, 1]
    with pytest.raises(ConfigError, match="max_fpr"):
        M.tpr_at_fpr(s, m, 1.5)
    with pytest.raises(ConfigError, match="NaN"):
        M.threshold_metrics(s, m, float("nan"))
    with pytest.raises(ConfigError, match="bins"):
        M.loss_kl([1.0, 2.0], [3.0], bins=0)
    with pytest.raises(ConfigError, match="NaN"):
        M.loss_kl([1.0, float("nan")], [3.0])
    with pytest.raises(ConfigError, match="losses"):
        M.attack_metrics(s, m, losses=[1.0])
    with pytest.raises(ConfigError, match="together"):
        M.attack_metrics(s, m, shadow_scores=s)
    with pytest.raises(ConfigError, match="shadow_is_member"):
        M.attack_metrics(s, m, shadow_scores=s, shadow_is_member=[1, 1])
    with pytest.raises(ConfigError, match="index"):
        M.scores_table(s, m, index=[1])
