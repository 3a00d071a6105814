"""A 3-trial Optuna sweep on real SQLite storage, then a resumed one."""

from __future__ import annotations

import optuna
import pytest
from mlflow.tracking import MlflowClient

from lit_mia.sweep import run_sweep
from tests.test_run import TINY

pytestmark = pytest.mark.filterwarnings("ignore")


def sweep_args(tmp_path, n: int) -> list[str]:
    return [
        *TINY,
        "attack.calibrate=false",
        "trainer.max_epochs=1",
        f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
        f"sweep.n_trials={n}",
        "sweep.sampler=random",
    ]


def test_sweep_runs_then_resumes(tmp_path, capsys):
    study = run_sweep("eps", sweep_args(tmp_path, 3))
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    assert study.study_name == "eps"
    assert (tmp_path / "mlruns" / "optuna.db").is_file()
    first = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(first) == 3
    out = capsys.readouterr().out
    assert "| trial | state | target.eps |" in out

    # resume: same command, completed trials kept, n_trials more run
    run_sweep("eps", sweep_args(tmp_path, 2))
    loaded = optuna.load_study(study_name="eps", storage=storage)
    done = [t for t in loaded.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 5
    assert [t.params for t in done[:3]] == [t.params for t in first]
    for t in done:  # the tie: attack eps follows the training eps
        assert 0.0 <= t.params["target.eps"] <= 0.3

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    exp = client.get_experiment_by_name("single")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "lit_mia.study" in r.data.tags]
    assert len(parents) == 1  # reused on resume
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 5
    assert {r.info.status for r in runs} == {"FINISHED"}
    ids = {t.user_attrs["mlflow_run_id"] for t in done}
    assert ids == {r.info.run_id for r in children}
    for r in children:
        assert r.data.params["attack.eps"] == r.data.params["target.eps"]
        assert "attack/ia/advantage_best" in r.data.metrics


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])  # Ctrl-C; SIGTERM in Lightning
def test_failed_trial_is_retried_on_resume(tmp_path, monkeypatch, stop):
    import lit_mia.run as run_mod

    real = run_mod.evaluate
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise stop  # the second trial is interrupted
        return real(*args, **kwargs)

    monkeypatch.setattr(run_mod, "evaluate", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_sweep("eps", sweep_args(tmp_path, 3))
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    study = optuna.load_study(study_name="eps", storage=storage)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]
    failed_params = study.trials[1].params

    run_sweep("eps", sweep_args(tmp_path, 1))
    study = optuna.load_study(study_name="eps", storage=storage)
    retry = study.trials[2]
    assert retry.state == optuna.trial.TrialState.COMPLETE
    assert retry.params == failed_params and retry.user_attrs["retry_of"] == 1

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    exp = client.get_experiment_by_name("single")
    statuses = sorted(r.info.status for r in client.search_runs([exp.experiment_id]))
    assert "RUNNING" not in statuses and "KILLED" in statuses
