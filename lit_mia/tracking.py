"""The tracking layer: the only module that talks to MLflow.

- `resolve_uri` turns the configured tracking URI into an absolute one; the default is a SQLite
  store `mlruns/mlflow.db` with artifacts beside it in `mlruns/artifacts` (MLflow 3 refuses the
  old ./mlruns file store).
- `Run` is a context manager around one MLflow run, created with an explicit `MlflowClient`
  (no global state, so tests can point at a temporary store). It ends FINISHED on success,
  KILLED on KeyboardInterrupt and FAILED on any exception — never left RUNNING. Off rank 0 it
  is inert: every method is a no-op, so callers need no rank checks around logging.
- `LightningLogger` streams per-epoch metrics of a Lightning Trainer into an existing run
  (step = epoch), on rank 0 only, and picklable for ddp_spawn.
- `tracked_run` opens a `Run` with the resolved config logged as params and config.yaml;
  `log_result` writes any attack's `AttackResult` (metrics under `attack/<name>/`, per-sample
  scores, histograms, figures, texts, stepped series); `TargetResult` is what one run returns.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only

from lit_mia import metrics, plots
from lit_mia.attacks.base import AttackResult
from lit_mia.config import ROOT, flatten, to_yaml
from lit_mia.errors import ConfigError

MAX_PARAMS_PER_BATCH = 100


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


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        )
        sha = out.stdout.strip()
        if out.returncode == 0 and sha:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def version_tags() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    tags = {}
    for pkg in ("lit_mia", "torch", "pytorch-lightning", "mlflow", "optuna", "numpy"):
        try:
            tags[f"version.{pkg}"] = version(pkg)
        except PackageNotFoundError:
            pass
    return tags


def is_rank_zero() -> bool:
    return rank_zero_only.rank == 0


class Run:
    """One MLflow run as a context manager; inert off rank 0."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        run_name: str,
        *,
        artifact_root: str | None = None,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.uri, self.artifact_uri = resolve_uri(uri, artifact_root)
        self.experiment, self.run_name = experiment, run_name
        self.tags = dict(tags or {})
        self.parent_run_id = parent_run_id
        self.run_id = run_id  # reopen an existing run (sweep parents on resume)
        self.active = is_rank_zero()
        self.client = None

    def __enter__(self) -> Run:
        if not self.active:
            return self
        self.client = client_for(self.uri)
        if self.run_id:
            self.client.update_run(self.run_id, status="RUNNING")
            return self
        tags = {"git_sha": git_sha(), **version_tags(), **self.tags}
        if self.parent_run_id:
            tags["mlflow.parentRunId"] = self.parent_run_id
        exp_id = experiment_id(self.client, self.experiment, self.artifact_uri)
        run = self.client.create_run(exp_id, run_name=self.run_name, tags=tags)
        self.run_id = run.info.run_id
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self.active or self.client is None:
            return False
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt | SystemExit):  # Ctrl-C, SIGTERM
            status = "KILLED"
        else:
            status = "FAILED"
            self.set_tag("error", f"{exc_type.__name__}: {exc}"[:4000])
        self.client.set_terminated(self.run_id, status=status)
        return False

    # -------------------------------------------------------------- logging
    def set_tag(self, key: str, value: Any) -> None:
        if self.active and self.client:
            self.client.set_tag(self.run_id, key, str(value))

    def log_params(self, params: Mapping[str, Any]) -> None:
        if not (self.active and self.client):
            return
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + MAX_PARAMS_PER_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        if self.active and self.client:
            log_metric_batch(self.client, self.run_id, metrics, step)

    def log_text(self, text: str, path: str) -> None:
        if self.active and self.client:
            self.client.log_text(self.run_id, text, path)

    def log_dict(self, data: Any, path: str) -> None:
        if self.active and self.client:
            self.client.log_dict(self.run_id, data, path)

    def log_figure(self, fig, path: str) -> None:
        if self.active and self.client:
            import matplotlib.pyplot as plt

            self.client.log_figure(self.run_id, fig, path)
            plt.close(fig)

    def log_file(self, local_path: str | Path, artifact_dir: str | None = None) -> None:
        if self.active and self.client:
            self.client.log_artifact(self.run_id, str(local_path), artifact_dir)

    def log_torch_state(self, state: Mapping[str, Any], name: str) -> None:
        """Save a state_dict as `checkpoints/<name>` (load it with weights_only=True)."""
        if not (self.active and self.client):
            return
        import torch

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / name
            torch.save(dict(state), path)
            self.client.log_artifact(self.run_id, str(path), "checkpoints")

    def lightning_logger(self) -> LightningLogger | None:
        """A Lightning logger writing this run's per-epoch metrics (None when inert)."""
        if not self.active:
            return LightningLogger(self.uri, None)
        return LightningLogger(self.uri, self.run_id)


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


class LightningLogger(Logger):
    """Per-epoch Lightning metrics into an existing MLflow run (step = epoch), rank 0 only."""

    def __init__(self, uri: str, run_id: str | None, prefix: str = "") -> None:
        super().__init__()
        self.uri, self.run_id, self.prefix = uri, run_id, prefix
        self._client = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_client"] = None
        return state

    @property
    def name(self) -> str:
        return "mlflow"

    @property
    def version(self) -> str:
        return self.run_id or ""

    @property
    def experiment(self):
        if self._client is None:
            self._client = client_for(self.uri)
        return self._client

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Parameters are logged once by `Run` from the resolved config."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not self.run_id:
            return
        metrics = dict(metrics)
        epoch = metrics.pop("epoch", None)
        step = int(epoch) if epoch is not None else int(step or 0)
        named = {f"{self.prefix}{k}": v for k, v in metrics.items()}
        log_metric_batch(self.experiment, self.run_id, named, step)


def env_rank() -> int:
    """Global rank from the launcher's environment (0 when not distributed)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


# ---------------------------------------------------------------- runs of lit_mia
@dataclass
class TargetResult:
    """What one target's (or one update-leakage experiment's) run produced (rank 0; empty
    elsewhere): its label, MLflow run id and every logged scalar metric."""

    name: str
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)


@contextmanager
def tracked_run(
    cfg: DictConfig, run_name: str, tags: dict[str, str], parent_run_id: str | None = None
) -> Iterator[Run]:
    """A `Run` (FAILED / KILLED on errors) with the resolved config logged as params and as
    config.yaml."""
    tr = cfg.tracking
    with Run(
        tr.uri,
        tr.experiment,
        run_name,
        artifact_root=tr.artifact_root,
        tags=tags,
        parent_run_id=parent_run_id,
    ) as run:
        run.log_params(flatten(cfg))
        run.log_text(to_yaml(cfg), "config.yaml")
        yield run


def log_result(run: Run, name: str, res: AttackResult, title: str = "", bins: int = 50) -> None:
    """Everything of one attack's result: metrics as `attack/<name>/<key>`, per-sample scores
    (`scores/<name>.csv`) with score / loss histograms (`bins` bins, titled `title`), the
    attack's own figures and texts, and its series stepped by list position."""
    run.log_metrics({f"attack/{name}/{k}": v for k, v in res.metrics.items()})
    if res.scores is not None:
        run.log_text(
            metrics.scores_table(res.scores, res.is_member, res.losses, res.index),
            f"scores/{name}.csv",
        )
        member = res.is_member == 1
        hists = {"score": res.scores}
        if res.losses is not None:
            hists["loss"] = res.losses
        for what, v in hists.items():
            run.log_figure(
                plots.loss_histogram(
                    v[member], v[~member], bins=bins, title=f"{title}: {name} {what}", xlabel=what
                ),
                f"plots/{name}_{what}_hist.png",
            )
    for path, fig in res.figures.items():
        run.log_figure(fig, path)
    for path, text in res.texts.items():
        run.log_text(text, path)
    for key, values in res.series.items():
        for step, v in enumerate(values):
            run.log_metrics({f"attack/{name}/{key}": float(v)}, step=step)


# ---------------------------------------------------------------- reading runs back (report)
@dataclass
class StoredRun:
    """One logged run as plain data (latest metric values); `parent_id` None at top level."""

    run_id: str
    name: str
    experiment_id: str
    status: str
    start_time: int
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    parent_id: str | None = None


class Store:
    """Read access to a tracking store for `lit-mia report` (and the one upload it makes)."""

    def __init__(self, uri: str, artifact_root: str | None = None) -> None:
        if uri.startswith("sqlite:///") or "://" not in uri:  # resolve_uri would create one
            db = Path(uri[len("sqlite:///") :]) if "://" in uri else Path(uri) / "mlflow.db"
            if not db.is_file():
                raise ConfigError(f"no MLflow store at {db} (tracking.uri={uri})")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # quiet reads
        self.uri, self.artifact_uri = resolve_uri(uri, artifact_root)
        self.client = client_for(self.uri)

    def experiments(self) -> dict[str, str]:
        return {e.name: e.experiment_id for e in self.client.search_experiments()}

    def runs(self, experiment_ids: list[str] | None = None, where: str = "") -> list[StoredRun]:
        """Runs of the experiments (all when None) matching the filter, newest first."""
        ids = experiment_ids or list(self.experiments().values())
        order = ["attributes.start_time DESC"]
        return [_stored(r) for r in self.client.search_runs(ids, where, order_by=order)]

    def run(self, run_id: str) -> StoredRun | None:
        from mlflow.exceptions import MlflowException

        try:
            return _stored(self.client.get_run(run_id))
        except MlflowException:
            return None

    def files(self, run_id: str, path: str = "") -> list[str]:
        """Every artifact file path of the run under `path`."""
        out = []
        for a in self.client.list_artifacts(run_id, path or None):
            out.extend(self.files(run_id, a.path) if a.is_dir else [a.path])
        return out

    def download(self, run_id: str, path: str, dst: str | Path) -> Path:
        return Path(self.client.download_artifacts(run_id, path, str(dst)))

    def log_file(self, run_id: str, local_path: str | Path, artifact_dir: str) -> None:
        self.client.log_artifact(run_id, str(local_path), artifact_dir)


def _stored(r) -> StoredRun:
    i, d = r.info, r.data
    kw = {"tags": dict(d.tags), "params": dict(d.params), "metrics": dict(d.metrics)}
    parent = d.tags.get("mlflow.parentRunId")
    return StoredRun(i.run_id, i.run_name or "", i.experiment_id, i.status, i.start_time or 0,
                     parent_id=parent, **kw)  # fmt: skip
