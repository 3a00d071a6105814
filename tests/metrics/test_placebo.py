"""metrics/placebo.py by simulation: a sound placebo (no signal, several attacks) warns in at
most 5% of runs, a per-attack 95% rule without the correction warns far more often, and a
placebo that saw the members warns."""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from lit_mia.metrics.delong import auc_interval
from lit_mia.metrics.placebo import placebo_metrics

REPS, ATTACKS = 300, 4


def test_no_signal_placebo_warns_in_at_most_five_percent_of_runs():
    rng = np.random.default_rng(61)
    m = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    warned = uncorrected = 0
    for _ in range(REPS):
        scores = {f"a{i}": (rng.normal(size=m.size), m) for i in range(ATTACKS)}
        per, off = placebo_metrics(scores)
        warned += off == 1.0
        # a per-attack 95% interval excludes 0.5 exactly when its unadjusted p is below 0.05
        uncorrected += any(r["auc_p"] < 0.05 for r in per.values())
    allowed = int(binom.ppf(0.999, REPS, 0.05))
    assert warned <= allowed
    assert uncorrected > allowed  # ~1 - 0.95^4 = 19%: why the interval is simultaneous


def test_a_placebo_with_signal_warns_and_says_which_attack():
    rng = np.random.default_rng(62)
    m = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    scores = {"quiet": (rng.normal(size=m.size), m), "loud": (rng.normal(size=m.size) + m, m)}
    per, off = placebo_metrics(scores)
    assert off == 1.0
    assert per["loud"]["off_chance"] == 1.0
    assert per["quiet"]["off_chance"] == 0.0
    assert per["loud"]["auc_ci_low"] > 0.5
    single = auc_interval(*scores["loud"])
    assert per["loud"]["auc_p"] == single["auc_p"]  # the unadjusted p is the per-attack one
    assert per["loud"]["auc_ci_low"] < single["auc_ci_low"]  # the interval is simultaneous
