"""The first hour of a new user (issue 27): sweeps that never mix settings, Ctrl-C, reports of
the newest finished run, corrupt checkpoints, quiet and consistent output."""

from __future__ import annotations

import json

import optuna
import pytest

from lit_mia import cli
from lit_mia.sweep import fixed
from tests.test_sweep import runs_of, sweep_args

pytestmark = pytest.mark.filterwarnings("ignore")
S = optuna.trial.TrialState


def _studies(tmp_path) -> dict[str, list]:
    url = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    names = [s.study_name for s in optuna.get_all_study_summaries(url)]
    return {n: optuna.load_study(study_name=n, storage=url).trials for n in names}


def test_sweep_refuses_a_study_made_with_other_fixed_settings(tmp_path, capsys):
    assert cli.main(["sweep", "eps", *sweep_args(tmp_path, 1)]) == 0
    (first,) = _studies(tmp_path)["eps"]
    assert first.state == S.COMPLETE
    capsys.readouterr()

    # same study, other fixed settings: exit 2 naming the key, nothing trained or reported
    other = sweep_args(tmp_path, 2, "trainer.max_epochs=2", "data.n_members=48")
    assert cli.main(["sweep", "eps", *other]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: study 'eps' was created with other fixed settings")
    assert "trainer.max_epochs: 1 -> 2" in err and "data.n_members: 64 -> 48" in err
    assert "--new-study" in err and err.count("\n") == 1
    assert "| trial |" not in out
    assert [t.number for t in _studies(tmp_path)["eps"]] == [0]

    # searched keys, sweep.* and display keys may change: the study resumes to 2 trials
    same = sweep_args(tmp_path, 2, "trainer.enable_progress_bar=false", "target.eps=0.3")
    assert cli.main(["sweep", "eps", *same]) == 0
    assert sum(t.state == S.COMPLETE for t in _studies(tmp_path)["eps"]) == 2

    # --new-study: the study of this setting, named by its settings' hash
    assert cli.main(["sweep", "eps", *other, "--new-study"]) == 0
    studies = _studies(tmp_path)
    (new,) = [n for n in studies if n != "eps"]
    assert new.startswith("eps-") and len(new) == len("eps-") + 8
    assert [t.state for t in studies[new]] == [S.COMPLETE, S.COMPLETE]
    assert len(studies["eps"]) == 2  # the old study is untouched
    recorded = json.loads(
        optuna.load_study(study_name=new, storage=f"sqlite:///{tmp_path}/mlruns/optuna.db")
        .user_attrs[fixed.ATTR]
    )
    assert recorded["trainer.max_epochs"] == "2" and "target.eps" not in recorded
    # each study its own MLflow parent with its own children
    runs = runs_of(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    parents = {r.data.tags["lit_mia.study"]: r.info.run_id for r in runs if "lit_mia.study" in r.data.tags}
    assert set(parents) == {"eps", new}
    kids = [r.data.tags.get("mlflow.parentRunId") for r in runs]
    assert kids.count(parents["eps"]) == 2 and kids.count(parents[new]) == 2
    # a rerun of --new-study with the same settings resumes that study, trains nothing
    assert cli.main(["sweep", "eps", *other, "--new-study"]) == 0
    assert len(_studies(tmp_path)[new]) == 2


def test_fixed_settings_differ_by_key():
    a = {"x": "1", "y": "2"}
    assert fixed.differing(a, a) == []
    assert fixed.differing(a, {"x": "1", "y": "3", "z": "0"}) == ["y: 2 -> 3", "z: (unset) -> 0"]
    assert fixed.digest(a) == fixed.digest(dict(reversed(a.items())))
    assert fixed.digest(a) != fixed.digest({"x": "1", "y": "3"})
