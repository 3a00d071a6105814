"""Pareto fronts: a synthetic study with a known front, against Optuna's own best_trials."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from lit_mia.sweep.pareto import front_figure, front_table, pareto_mask

pytestmark = pytest.mark.filterwarnings("ignore")


def test_known_front_two_objectives():
    # maximise accuracy, minimise leakage: the front is the staircase (0.9, 0.3), (0.8, 0.2),
    # (0.6, 0.1); the others are each dominated by one of them; a duplicate of a front point
    # stays on the front
    values = np.array(
        [[0.9, 0.3], [0.8, 0.2], [0.6, 0.1], [0.7, 0.25], [0.5, 0.3], [0.8, 0.2], [0.6, 0.15]]
    )
    mask = pareto_mask(values, ["maximize", "minimize"])
    assert mask.tolist() == [True, True, True, False, False, True, False]
    # flipping a direction changes the front: maximise both -> (0.9, 0.3) dominates all
    assert pareto_mask(values, ["maximize", "maximize"]).tolist() == [True] + [False] * 6


def test_front_matches_optuna_on_synthetic_study():
    rng = np.random.default_rng(0)
    directions = ["maximize", "maximize", "minimize"]
    study = optuna.create_study(directions=directions)
    pts = rng.random((60, 3))
    # plant a front: points that beat every random one in all three objectives but trade off
    planted = np.array([[1.5, 1.1, -0.5], [1.1, 1.5, -0.5], [1.2, 1.2, -0.6]])
    for v in [*pts, *planted]:
        study.add_trial(
            optuna.trial.create_trial(params={}, distributions={}, values=[float(x) for x in v])
        )
    values = np.array([t.values for t in study.trials])
    mask = pareto_mask(values, directions)
    assert set(np.flatnonzero(mask)) == {t.number for t in study.best_trials}
    assert set(np.flatnonzero(mask)) == {60, 61, 62}
    rows = [
        {"number": int(i), "params": {}, "values": list(values[i])} for i in np.flatnonzero(mask)
    ]
    table = front_table(rows, [], ["val/acc", "val/adv_acc", "attack/*/tpr_at_fpr_0.001"])
    assert table.count("\n") == 1 + 3
    assert "| 61 |" in table
    fig = front_figure(values, mask, ["a", "b", "c"])
    assert len(fig.axes) == 3  # the three 2-D projections


def test_pareto_mask_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"values must be \(n, 2\)"):
        pareto_mask(np.zeros((3, 3)), ["maximize", "minimize"])
