"""`Run`: one MLflow run as a context manager, created with an explicit `MlflowClient` (no global
state, so tests can point at a temporary store). It ends FINISHED on success, KILLED on
KeyboardInterrupt and FAILED on any exception, never left RUNNING. Off rank 0 it is inert:
every method is a no-op, so callers need no rank checks around logging. Also the version tags
(git sha, package versions) every run carries, and the ranks.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lit_mia.config import ROOT
from lit_mia.tracking.lightning import LightningLogger
from lit_mia.tracking.ranks import is_rank_zero
from lit_mia.tracking.store import client_for, experiment_id, log_metric_batch, resolve_uri

MAX_PARAMS_PER_BATCH = 100


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
        with contextlib.suppress(PackageNotFoundError):
            tags[f"version.{pkg}"] = version(pkg)
    return tags


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
