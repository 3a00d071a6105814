"""Per-slice membership metrics (lit_mia/metrics/slicing.py, attacks/slices.py): known answers
on synthetic slices, too-small slices reported as such, the run-level wiring, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lit_mia import cli
from lit_mia.errors import ConfigError
from lit_mia.metrics.slicing import slice_masks, slice_metrics, slice_table
from lit_mia.run import run_experiment
from tests.conftest import all_runs, client_for, tiny


def _leaky_class_set(seed: int = 0, n: int = 600):
    """Class 0 leaks (members shifted by 2), class 1 does not, class 2 has 5 samples."""
    rng = np.random.default_rng(seed)
    m = rng.random(n) < 0.5
    lab = rng.integers(0, 2, n)
    lab[:5] = 2
    s = rng.normal(size=n) + 2.0 * (m & (lab == 0))
    return s, m, lab


def test_slices_match_sklearn_and_find_the_leaky_class() -> None:
    s, m, lab = _leaky_class_set()
    masks = slice_masks(["class"], lab)
    assert set(masks) == {"class_0", "class_1", "class_2"}
    out = slice_metrics(s, m, masks, min_size=10, bootstrap=50)
    for c in (0, 1):
        sel = lab == c
        assert out[f"slice/class_{c}/auc"] == pytest.approx(roc_auc_score(m[sel], s[sel]))
        assert out[f"slice/class_{c}/n_members"] == (m & sel).sum()
        lo, hi = out[f"slice/class_{c}/auc_ci_low"], out[f"slice/class_{c}/auc_ci_high"]
        assert lo < hi
    assert out["slice/class_0/auc_ci_low"] > 0.8  # leaks
    assert out["slice/class_1/auc_ci_low"] < 0.5 < out["slice/class_1/auc_ci_high"]  # chance
    # too small: flagged, no numbers
    assert out["slice/class_2/too_small"] == 1.0
    assert "slice/class_2/auc" not in out
    rows = {r[0]: r for r in slice_table(out)}
    assert rows["class_2"][1] is None
    assert rows["class_0"][1] > 0.8


def test_correctness_slices_partition() -> None:
    s, m, _ = _leaky_class_set()
    correct = np.random.default_rng(3).random(s.size) < 0.7
    masks = slice_masks(["correctness"], correct=correct)
    assert np.array_equal(masks["correct"], ~masks["incorrect"])
    out = slice_metrics(s, m, masks, min_size=5)
    assert out["slice/correct/n_members"] + out["slice/incorrect/n_members"] == m.sum()


def test_bad_slices() -> None:
    s, m, lab = _leaky_class_set()
    with pytest.raises(ConfigError, match="valid: class, correctness"):
        slice_masks(["colour"], lab)
    with pytest.raises(ConfigError, match="needs a dataset with labels"):
        slice_masks(["class"], None, n=s.size)
    with pytest.raises(ConfigError, match="integer labels"):
        slice_masks(["class"], -np.ones(s.size, dtype=int))
    with pytest.raises(ConfigError, match="slice_min"):
        slice_metrics(s, m, {"all": np.ones(s.size, bool)}, min_size=0)


def test_slices_logged_for_every_attack_of_a_run(tmp_path) -> None:
    res = run_experiment(
        "single", tiny(tmp_path, "attacks=[ib]", "attack.bootstrap=20", "attack.slice_min=5")
    )
    m = next(iter(res.values())).metrics
    assert "attack/ib/slice/correct/auc" in m or "attack/ib/slice/correct/too_small" in m
    n = sum(m[f"attack/ib/slice/class_{c}/n_members"] for c in range(10))
    assert n == 64  # the classes partition the 64 evaluation members
    client = client_for(tmp_path)
    (run,) = all_runs(client)
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/ib_slices.png" in arts


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["attack.slicing=[colour]"], "valid: class, correctness"),
        (["attack.slice_min=0"], "attack.slice_min"),
    ],
)
def test_bad_slice_settings_exit_2(extra, expected, tmp_path, capsys) -> None:
    uri = f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db"
    rc = cli.main(["run", "single", *extra, uri])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0], err
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()
