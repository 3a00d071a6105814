"""Statistic, interval and verdict of a claim from logged metrics (verdict.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lit_mia.reproduce import intervals as iv
from lit_mia.reproduce.claims import Band, Claim, Operand
from lit_mia.reproduce.verdict import (
    NOT_REPRODUCED,
    REPRODUCED,
    Measurement,
    measure,
    paired_operands,
    reason,
    verdict,
)

ABOVE_0 = Band("above", 0.0)


def claim(a, b=None, band=ABOVE_0, **kw) -> Claim:
    return Claim(
        id="c", paper="p", finding="f", paper_value="v", source="s", experiment="default",
        overrides=(), a=Operand(*a), b=Operand(*b) if b else None, band=band, **kw,
    )  # fmt: skip


AUC = {"attack/ia/auc": 0.60, "attack/ia/auc_ci_low": 0.57, "attack/ia/auc_ci_high": 0.63}
AUC_B = {"attack/ib/auc": 0.55, "attack/ib/auc_ci_low": 0.53, "attack/ib/auc_ci_high": 0.57}


@pytest.mark.parametrize(
    ("band", "low", "high", "expected"),
    [
        (Band("above", 0.5), 0.51, 0.6, REPRODUCED),
        (Band("above", 0.5), 0.5, 0.6, NOT_REPRODUCED),  # touching the band is not clearing it
        (Band("above", 0.5), 0.45, 0.6, NOT_REPRODUCED),
        (Band("below", 0.5), 0.3, 0.49, REPRODUCED),
        (Band("below", 0.5), 0.3, 0.51, NOT_REPRODUCED),
        (Band("above", 0.0), math.nan, 0.1, NOT_REPRODUCED),
    ],
)
def test_verdict_needs_the_whole_interval(band, low, high, expected):
    assert verdict(band, Measurement(0.5 * (low + high), low, high, "")) == expected


def test_reason_says_why():
    m = Measurement(0.55, 0.49, 0.61, "")
    assert "not resolved" in reason(Band("above", 0.5), m)
    assert "wrong side" in reason(Band("above", 0.6), m)
    assert "clears" in reason(Band("above", 0.4), m)


def test_single_metric_uses_its_logged_bootstrap_interval():
    m = measure(claim(("t", "attack/ia/auc")), {"t": AUC})
    assert (m.value, m.low, m.high) == (0.60, 0.57, 0.63)


def test_difference_combines_standard_errors():
    m = measure(claim(("t", "attack/ia/auc"), ("t", "attack/ib/auc")), {"t": {**AUC, **AUC_B}})
    se = math.hypot(iv.se_from_interval(0.57, 0.63), iv.se_from_interval(0.53, 0.57))
    assert m.value == pytest.approx(0.05)
    assert (m.low, m.high) == pytest.approx((0.05 - iv.Z95 * se, 0.05 + iv.Z95 * se))
    assert "independent" in m.how


def test_difference_across_targets():
    got = {"pgd": AUC, "natural": {**AUC, "attack/ia/auc": 0.58}}
    m = measure(claim(("pgd", "attack/ia/auc"), ("natural", "attack/ia/auc")), got)
    assert m.value == pytest.approx(0.02)


def test_binomial_difference_and_single():
    c = claim(("u", "attack/a_li/acc"), ("u", "attack/a_li/acc_majority"),
              interval="binomial", n_key="updates.m_target")  # fmt: skip
    m = measure(c, {"u": {"attack/a_li/acc": 0.9, "attack/a_li/acc_majority": 0.1}}, n=500)
    se = math.hypot(math.sqrt(0.09 / 500), math.sqrt(0.09 / 500))
    assert (m.low, m.high) == pytest.approx((0.8 - iv.Z95 * se, 0.8 + iv.Z95 * se))
    single = claim(("u", "attack/a_li/acc"), interval="binomial", n_key="updates.m_target")
    assert measure(single, {"u": {"attack/a_li/acc": 0.9}}, n=500).low == pytest.approx(
        iv.wilson(0.9, 500)[0]
    )


def test_paired_z():
    c = claim(("u", "attack/a_ssr/mse_class_mean"), ("u", "attack/a_ssr/mse"),
              interval="paired_z", z_key="attack/a_ssr/z_class_mean")  # fmt: skip
    got = {"attack/a_ssr/mse_class_mean": 0.055, "attack/a_ssr/mse": 0.050,
           "attack/a_ssr/z_class_mean": 5.0}  # fmt: skip
    m = measure(c, {"u": got})
    assert m.value == pytest.approx(0.005)
    assert (m.low, m.high) == pytest.approx((0.005 - iv.Z95 * 0.001, 0.005 + iv.Z95 * 0.001))


def test_missing_metric_or_interval_is_a_key_error():
    with pytest.raises(KeyError, match="attack/iv/auc was not logged"):
        measure(claim(("t", "attack/iv/auc")), {"t": AUC})
    with pytest.raises(KeyError, match="no logged interval"):
        measure(claim(("t", "attack/ia/auc")), {"t": {"attack/ia/auc": 0.6}})
    with pytest.raises(KeyError, match="no results for target"):
        measure(claim(("x", "attack/ia/auc")), {"t": AUC})


def _scores(rng, n=200, shift=0.5, rho=0.8, index_offset=0):
    m = np.r_[np.ones(n, int), np.zeros(n, int)]
    common = rng.normal(size=2 * n)
    mk = lambda s: np.sqrt(rho) * common + np.sqrt(1 - rho) * rng.normal(size=2 * n) + s * m  # noqa: E731
    return np.arange(2 * n) + index_offset, m, mk(shift), mk(shift - 0.2)


def _auc_metrics(name, s, m):
    from lit_mia.metrics.delong import auc_interval

    r = auc_interval(s, m)
    return {f"attack/{name}/auc": r["auc"], f"attack/{name}/auc_ci_low": r["auc_ci_low"],
            f"attack/{name}/auc_ci_high": r["auc_ci_high"]}  # fmt: skip


def test_difference_on_the_same_samples_is_paired():
    """Two attacks on one target's samples: measure() uses the paired DeLong interval, whose
    point is the logged difference and which is narrower than the independent one."""
    rng = np.random.default_rng(0)
    idx, m, sa, sb = _scores(rng)
    metrics = {"t": {**_auc_metrics("ia", sa, m), **_auc_metrics("ib", sb, m)}}
    c = claim(("t", "attack/ia/auc"), ("t", "attack/ib/auc"))
    scores = {"t": {"ia": (idx, m, sa), "ib": (idx, m, sb)}}
    paired = measure(c, metrics, scores=scores)
    unpaired = measure(c, metrics)
    assert paired.how.startswith("paired (DeLong)")
    assert "200 members + 200 non-members" in paired.how
    assert "no per-sample scores" in unpaired.how
    assert paired.value == pytest.approx(unpaired.value, abs=1e-12)
    assert paired.high - paired.low < 0.7 * (unpaired.high - unpaired.low)


def test_difference_on_other_samples_stays_independent():
    """Two targets on different samples (other member counts): no pairing, said so."""
    rng = np.random.default_rng(1)
    idx, m, sa, _ = _scores(rng)
    idx2, m2, _, sb = _scores(rng, index_offset=5000)
    metrics = {"x": _auc_metrics("boundary", sa, m), "y": _auc_metrics("boundary", sb, m2)}
    c = claim(("x", "attack/boundary/auc"), ("y", "attack/boundary/auc"))
    scores = {"x": {"boundary": (idx, m, sa)}, "y": {"boundary": (idx2, m2, sb)}}
    got = measure(c, metrics, scores=scores)
    assert "independent (different samples)" in got.how


def test_metrics_without_a_per_sample_form_are_not_paired():
    c = claim(("t", "attack/ia/auc"), ("t", "attack/ib/tpr_at_fpr_0.01"))
    assert paired_operands(c) == []  # an AUC minus a TPR: nothing to pair
    assert paired_operands(claim(("t", "attack/a_li/acc"), ("t", "attack/a_li/acc_majority"))) == []
