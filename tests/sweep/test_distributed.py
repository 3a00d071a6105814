"""Distributed sweeps on real servers (issue 14): a throwaway PostgreSQL instance started here,
a real `mlflow server` on a free loopback port over it, two worker processes on one study, and
a real SIGKILL of a real worker mid-trial, on PostgreSQL and on SQLite."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from lit_mia import cli, tracking
from lit_mia.errors import ConfigError
from lit_mia.sweep import fixed, pgserver, run_sweep
from tests.conftest import runs_of
from tests.helpers.runif import RunIf
from tests.sweep.conftest import tiny_args

pytestmark = pytest.mark.filterwarnings("ignore")
S = optuna.trial.TrialState


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, ok, timeout: float = 240.0, every: float = 0.5):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        got = ok()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def pg():
    """A PostgreSQL server of its own: initdb into /tmp (postgres must reach it when we are
    root), loopback, a free port; stopped and removed afterwards. Yields the port."""
    d = tempfile.mkdtemp(prefix="lit_mia_pg_")
    port = free_port()
    try:
        pgserver.start(d, port)
        yield port
    finally:
        pgserver.stop(d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(pg, tmp_path_factory):
    """`mlflow server` over the PostgreSQL backend with artifacts in a temporary folder."""
    port = free_port()
    art = tmp_path_factory.mktemp("server_artifacts")
    log = open(art.parent / "mlflow_server.log", "w")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--backend-store-uri", pgserver.url(pg, "mlflow"), "--artifacts-destination", str(art)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    uri = f"http://127.0.0.1:{port}"

    def up():
        assert proc.poll() is None, (art.parent / "mlflow_server.log").read_text()[-2000:]
        try:
            return urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200
        except OSError:
            return False

    try:
        wait_for("the MLflow server", up, timeout=180)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # uvicorn drains slowly on a loaded machine
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@RunIf(postgres=True)
def test_mlflow_server_round_trip(mlflow_server):
    with tracking.Run(mlflow_server, "server_check", "tiny") as run:
        run.log_params({"data.n_members": 64})
        run.log_metrics({"val/acc": 0.75}, step=1)
        run.log_text("hello through the server", "notes/hello.txt")
    client = MlflowClient(tracking_uri=mlflow_server)
    back = client.get_run(run.run_id)
    assert back.info.status == "FINISHED"
    assert back.data.params == {"data.n_members": "64"}
    assert back.data.metrics == {"val/acc": 0.75}
    with tempfile.TemporaryDirectory() as d:
        path = client.download_artifacts(run.run_id, "notes/hello.txt", d)
        assert Path(path).read_text() == "hello through the server"


def test_unreachable_tracking_server_fails_fast(capsys):
    """A refused port: one line naming the URI, exit 2, before any training (the check runs
    when the first MLflow client is made, before the target is fit)."""
    uri = f"http://127.0.0.1:{free_port()}"
    assert cli.main(["sweep", "eps", f"tracking.uri={uri}", "sweep.n_trials=1"]) == 2
    assert cli.main(["run", "single", f"tracking.uri={uri}", *tiny_args()[:-1]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert all(uri in line and line.startswith("error:") for line in err)
    # a server that accepts connections but never answers: the check's own timeout ends it
    # (MLflow's client alone retried for minutes)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match=r"unreachable .*timed out"):
            tracking.check_reachable(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=2)
        assert time.monotonic() - t0 < 30


@RunIf(postgres=True)
def test_two_workers_on_postgresql(pg, mlflow_server):
    """Two worker processes, the default sampler seed, one PostgreSQL study, tracking through
    the server: the budget is met exactly, no point twice, every run FINISHED."""
    name = f"two_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres@127.0.0.1:{pg}/optuna"  # psycopg 3 via normalisation
    args = tiny_args(f"tracking.uri={mlflow_server}", f"sweep.storage={url}")
    # a worker that finds the rest of the budget running sleeps heartbeat_interval s between
    # looks (default 30 s); 2 s keeps the default grace_period (90 s), so no trial goes stale
    args += ["sweep.heartbeat_interval=2"]
    run_sweep("eps", [*args, f"sweep.study_name={name}", "sweep.n_trials=3"], workers=2)
    study = optuna.load_study(study_name=name, storage=pgserver.url(pg))
    states = [t.state for t in study.trials]
    done = [t for t in study.trials if t.state == S.COMPLETE]
    assert len(done) == 3
    assert set(states) <= {S.COMPLETE, S.PRUNED}
    eps = [t.params["target.eps"] for t in done]
    assert len(set(eps)) == 3, eps
    assert {t.user_attrs["worker"] for t in study.trials} == {0, 1}  # both processes worked
    runs = runs_of(mlflow_server)
    (parent,) = [r for r in runs if r.data.tags.get("lit_mia.study") == name]
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert {r.info.run_id for r in kids} == {t.user_attrs["mlflow_run_id"] for t in done}
    assert {r.info.status for r in [parent, *kids]} == {"FINISHED"}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=RunIf(postgres=True))]
)
def test_kill9_worker_trial_failed_and_rerun_once(backend, tmp_path, request):
    """kill -9 of a worker mid-trial, then a restart: the killed trial ends FAIL, its point is
    re-run once and COMPLETEs, its MLflow run ends FAILED (tagged reaped), nothing RUNNING."""
    name = f"kill_{backend}_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        storage = f"sqlite:///{tmp_path}/optuna.db"
    else:
        storage = pgserver.url(request.getfixturevalue("pg"))
    mlflow_uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    args = tiny_args(f"tracking.uri={mlflow_uri}", f"sweep.storage={storage}")
    args += [f"sweep.study_name={name}", "sweep.n_trials=1"]
    args += ["sweep.heartbeat_interval=1", "sweep.grace_period=2"]
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "lit_mia.cli", "sweep", "eps", *args, "trainer.max_epochs=500"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def trial_running():
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return None
        running = [t for t in study.trials if t.state == S.RUNNING]
        if not running or not (tmp_path / "mlruns" / "mlflow.db").is_file():
            return None
        live = [r for r in runs_of(mlflow_uri) if r.info.run_name == f"{name}/trial-0"]
        return running[0] if live and live[0].info.status == "RUNNING" else None

    killed = wait_for("a running trial", trial_running)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    log.close()
    study = optuna.load_study(study_name=name, storage=storage)
    assert study.trials[0].state == S.RUNNING  # what kill -9 leaves behind

    # the restart trains 1 epoch instead of 500: a changed setting the study would refuse
    # (sweep/fixed.py), so the test rewrites the study's record of it (kill -9 recovery is under
    # test here, not the settings check)
    recorded = json.loads(study.user_attrs[fixed.ATTR])
    assert recorded["trainer.max_epochs"] == "500", recorded["trainer.max_epochs"]
    study.set_user_attr(fixed.ATTR, json.dumps({**recorded, "trainer.max_epochs": "1"}))
    run_sweep("eps", [*args, "trainer.max_epochs=1"])  # the restart
    study = optuna.load_study(study_name=name, storage=storage)
    assert [t.state for t in study.trials] == [S.FAIL, S.COMPLETE]
    retry = study.trials[1]
    assert retry.params == killed.params
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == 0
    runs = {r.info.run_name: r for r in runs_of(mlflow_uri)}
    dead, rerun = runs[f"{name}/trial-0"], runs[f"{name}/trial-1"]
    assert dead.info.status == "FAILED"
    assert "lit_mia.reaped" in dead.data.tags
    assert rerun.info.status == "FINISHED"
    assert rerun.info.run_id == retry.user_attrs["mlflow_run_id"]
    assert "RUNNING" not in {r.info.status for r in runs.values()}
    assert len(runs) == 3  # the parent, the killed trial, its re-run
