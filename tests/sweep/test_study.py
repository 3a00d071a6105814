"""Optuna sweeps on real SQLite storage: run, resume to a total budget, retry, bad input."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from lit_mia import cli, config
from lit_mia.errors import ConfigError
from lit_mia.sweep import load_spec, run_sweep
from lit_mia.sweep.pareto import pareto_mask
from lit_mia.sweep.spec import check_split
from tests.conftest import runs_of
from tests.sweep.conftest import sweep_args

pytestmark = pytest.mark.filterwarnings("ignore")
S = optuna.trial.TrialState


def eps_with_objective(tmp_path, index: int, metric: str, sweep: str = "eps") -> str:
    """sweeps/<sweep>.yaml with objective `index` measuring `metric`, as a file (its study
    name is the file's stem)."""
    raw = OmegaConf.load(config.SWEEPS_DIR / f"{sweep}.yaml")
    raw.objectives[index].metric = metric
    (tmp_path / "alt").mkdir(exist_ok=True)
    path = tmp_path / "alt" / f"{sweep}.yaml"
    OmegaConf.save(raw, path)
    return str(path)


def test_sweep_runs_then_resumes_to_total_budget(tmp_path, capsys):
    study = run_sweep("eps", sweep_args(tmp_path, 2))
    storage = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    assert study.study_name == "eps"
    assert (tmp_path / "mlruns" / "optuna.db").is_file()
    first = [t for t in study.trials if t.state == S.COMPLETE]
    assert len(first) == 2
    assert "| trial | state | target.eps | val/acc |" in capsys.readouterr().out

    # resume: n_trials is the study's total; a finished study runs nothing more
    run_sweep("eps", sweep_args(tmp_path, 3))
    run_sweep("eps", sweep_args(tmp_path, 3))
    loaded = optuna.load_study(study_name="eps", storage=storage)
    done = [t for t in loaded.trials if t.state == S.COMPLETE]
    assert len(done) == 3
    assert [t.params for t in done[:2]] == [t.params for t in first]
    eps = [t.params["target.eps"] for t in done]
    assert len(set(eps)) == 3
    assert all(0.0 <= e <= 0.3 for e in eps)

    runs = runs_of(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    parents = [r for r in runs if "lit_mia.study" in r.data.tags]
    assert len(parents) == 1  # reused on resume
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == 3
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {t.user_attrs["mlflow_run_id"] for t in done} == {r.info.run_id for r in children}
    by_id = {r.info.run_id: r for r in children}
    # two objectives: the parent logs the Pareto front, each trial's run says if it is on it
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    files = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"pareto.md", "summary.md", "sweep.yaml"} <= files
    on = pareto_mask(np.array([t.values for t in done]), ["maximize", "minimize"])
    for t, front in zip(done, on):
        tag = by_id[t.user_attrs["mlflow_run_id"]].data.tags["lit_mia.pareto"]
        assert tag == str(bool(front)).lower()
    for t in done:  # the objective is the run's last-epoch validation accuracy
        r = by_id[t.user_attrs["mlflow_run_id"]]
        assert t.values[0] == pytest.approx(r.data.metrics["val/acc"])
        assert r.data.params["attack.eps"] == r.data.params["target.eps"]  # the tie


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
    assert [t.state for t in study.trials] == [S.COMPLETE, S.FAIL]
    failed_params = study.trials[1].params

    run_sweep("eps", sweep_args(tmp_path, 2))  # total 2: only the retried point runs
    study = optuna.load_study(study_name="eps", storage=storage)
    assert [t.state for t in study.trials] == [S.COMPLETE, S.FAIL, S.COMPLETE]
    retry = study.trials[2]
    assert retry.params == failed_params
    assert retry.user_attrs["retry_of"] == 1

    statuses = sorted(r.info.status for r in runs_of(f"sqlite:///{tmp_path}/mlruns/mlflow.db"))
    assert "RUNNING" not in statuses
    assert "KILLED" in statuses


@pytest.mark.parametrize(
    ("metric", "split"),
    [
        ("target/test_acc", "test split"),
        ("target/adv_test_acc", "test split"),
        ("target/train_acc", "train split"),
        ("leakage/test_acc", "members and non-members"),
    ],
)
def test_objectives_on_evaluation_splits_are_refused(metric, split):
    with pytest.raises(ConfigError, match=f"measured on .*{split}.*val/acc"):
        check_split(metric)


def test_shipped_sweeps_select_on_validation_split():
    for name in ("eps", "capacity", "privacy_robustness"):
        spec, _ = load_spec(name)
        assert spec.objectives[0].metric == "val/acc"
        for o in spec.objectives:
            assert o.metric.split("/")[0] in ("val", "attack"), (name, o.metric)
    spec, _ = load_spec("privacy_robustness")
    assert [o.metric for o in spec.objectives][1:] == ["val/adv_acc", "attack/*/tpr_at_fpr_0.001"]
    assert set(spec.params["target.name"].choices) == {"pgd", "trades"}


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--workers", "0"], "--workers must be >= 1, got 0"),
        (["@target/test_acc"], "measured on the evaluation non-members"),
        (["@val/accuracy"], "unknown validation objective 'val/accuracy'"),
        (["@privacy_robustness@target/adv_test_acc"], "sweeps select on the validation split"),
        (["sweep.storage=mysql://u@127.0.0.1/optuna"], "driver is not installed"),
        (["sweep.storage=postgresql://postgres@127.0.0.1:9/optuna"], "refused the connection"),
        (["sweep.grace_period=1", "sweep.heartbeat_interval=5"], "sweep.grace_period must be >"),
        (["trainer.val_adv_steps=0", "@val/adv_acc"], "val_adv_steps > 0"),
    ],
)
def test_sweep_bad_input_one_line_exit_2(tmp_path, capsys, args, expect):
    base = [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", "sweep.n_trials=1"]
    name = "eps"
    if args[-1].startswith("@"):  # an objective measures another metric: @[SWEEP@]METRIC
        *sweep, metric = args[-1][1:].split("@")
        name = eps_with_objective(tmp_path, len(sweep), metric, *sweep)
        args = args[:-1]
    assert cli.main(["sweep", name, *base, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: "), err
    assert expect in err[0], err
    if args and "storage" in args[0]:
        assert args[0].split("=", 1)[1].split("@")[1] in err[0]  # names the URL


def test_objective_no_trial_logs_is_an_error(tmp_path):
    name = eps_with_objective(tmp_path, 1, "attack/ia/no_such_metric")
    with pytest.raises(ConfigError, match=r"\['attack/ia/no_such_metric'\] were not logged"):
        run_sweep(name, sweep_args(tmp_path, 1))
