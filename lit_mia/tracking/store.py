"""MLflow stores: resolving the tracking URI (a SQLite store `mlruns/mlflow.db` with artifacts
beside it in `mlruns/artifacts` by default; MLflow 3 refuses the old ./mlruns file store), the
client, reachability, experiments by name, finding and reaping runs, tags.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from lit_mia.errors import ConfigError
from lit_mia.tracking.ranks import is_rank_zero


def resolve_uri(uri: str, artifact_root: str | None = None, create: bool = True) -> tuple[str, str]:
    """(absolute tracking URI, artifact root URI). Creates the SQLite file's folder unless
    `create` is false (`--dry-run`)."""
    artifacts = artifact_root
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        db = db if db.is_absolute() else Path.cwd() / db
        if create:
            db.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{db}"
        artifacts = artifacts or str(db.parent / "artifacts")
    elif "://" not in uri:  # a plain folder: keep everything inside it, as SQLite
        folder = Path(uri).resolve()
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        artifacts = artifacts or str(folder / "artifacts")
    elif uri.startswith(("http://", "https://")):  # a server: its artifact root, unless set
        return uri, artifacts or ""
    artifacts = artifacts or str(Path.cwd() / "mlruns" / "artifacts")
    if "://" not in artifacts:
        artifacts = Path(artifacts).resolve().as_uri()
    return uri, artifacts


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    check_reachable(uri)
    return MlflowClient(tracking_uri=uri)


def check_reachable(uri: str, timeout: float = 10.0) -> None:
    """ConfigError within `timeout` s naming an http(s) tracking server that does not answer
    `/health` (MLflow's own client retries for minutes)."""
    import urllib.request

    try:
        if uri.startswith(("http://", "https://")):
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except (OSError, ValueError) as e:
        why = str(getattr(e, "reason", e)).splitlines()[0]
        msg = f"tracking server {uri} is unreachable ({why}); start it (make server) or fix"
        raise ConfigError(msg + " tracking.uri") from None


def reap_runs(uri: str, parent_run_id: str, run_name: str, reason: str) -> list[str]:
    """End FAILED, tagged `lit_mia.reaped`=`reason`, the RUNNING child runs `run_name` of
    `parent_run_id`: the run of a sweep trial whose worker died (kill -9, OOM)."""
    c = client_for(uri)
    where = f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.status = 'RUNNING'"
    runs = c.search_runs([c.get_run(parent_run_id).info.experiment_id], where)
    ids = [r.info.run_id for r in runs if r.info.run_name == run_name]
    for run_id in ids:
        c.set_tag(run_id, "lit_mia.reaped", reason)
        c.set_terminated(run_id, status="FAILED")
    return ids


def set_tags(uri: str, tags_by_run: Mapping[str, Mapping[str, str]]) -> None:
    c = client_for(uri)
    _ = [c.set_tag(run, k, v) for run, tags in tags_by_run.items() for k, v in tags.items()]


EXPERIMENT_PREFIX = "lit_mia"
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}  # UI: runs table


def mlflow_experiment(name: str) -> str:
    """The MLflow experiment of `tracking.experiment`: `lit_mia/<name>` (names already in the
    `lit_mia` namespace are kept), so the UI never lists a project `default` beside MLflow's
    built-in `Default` experiment."""
    return name if name.startswith(EXPERIMENT_PREFIX) else f"{EXPERIMENT_PREFIX}/{name}"


def experiment_id(client, name: str, artifact_uri: str) -> str:
    """Id of the MLflow experiment for `name` (`mlflow_experiment(name)`), created with its
    artifacts under `artifact_uri`."""
    name = mlflow_experiment(name)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        for key, value in EXPERIMENT_TAGS.items():  # a store made by an older lit_mia
            if exp.tags.get(key) != value:
                client.set_experiment_tag(exp.experiment_id, key, value)
        return exp.experiment_id
    try:
        where = f"{artifact_uri}/{name}" if artifact_uri else None  # None: the server's
        return client.create_experiment(name, artifact_location=where, tags=EXPERIMENT_TAGS)
    except Exception:  # created concurrently by another worker
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def find_run(
    uri: str, experiment: str, tags: Mapping[str, str], artifact_root: str | None = None
) -> str | None:
    """Id of the newest run of `experiment` carrying all `tags` (rank 0; None elsewhere)."""
    if not is_rank_zero():
        return None
    uri, artifacts = resolve_uri(uri, artifact_root)
    client = client_for(uri)
    exp_id = experiment_id(client, experiment, artifacts)
    first_key, first_value = next(iter(tags.items()))
    runs = client.search_runs(
        [exp_id], filter_string=f"tags.`{first_key}` = '{first_value}'", max_results=100
    )
    for r in runs:
        if all(r.data.tags.get(k) == v for k, v in tags.items()):
            return r.info.run_id
    return None


def log_metric_batch(client, run_id: str, metrics: Mapping[str, float], step: int) -> None:
    import math

    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    items = [
        Metric(k, float(v), ts, int(step))
        for k, v in metrics.items()
        if v is not None and math.isfinite(float(v))
    ]
    for i in range(0, len(items), 1000):
        client.log_batch(run_id, metrics=items[i : i + 1000])
