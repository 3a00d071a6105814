"""Reading logged runs back as plain data (`Store`, `StoredRun`: latest metric values, tags,
parent ids) for `lit-mia report` and the HTML report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lit_mia.errors import ConfigError
from lit_mia.tracking.store import client_for, resolve_uri


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

    def scores(self, run_id: str) -> dict[str, tuple]:
        """attack -> (dataset index, is_member, score) of every `scores/<attack>.csv` the run
        logged (tracking.results.log_result), as TargetResult.scores holds them."""
        import tempfile

        from lit_mia.metrics import read_scores_table

        out = {}
        with tempfile.TemporaryDirectory() as tmp:
            for path in self.files(run_id, "scores"):
                if path.endswith(".csv"):
                    got = read_scores_table(self.download(run_id, path, tmp).read_text())
                    if got is not None:
                        out[Path(path).stem] = got
        return out

    def log_file(self, run_id: str, local_path: str | Path, artifact_dir: str) -> None:
        self.client.log_artifact(run_id, str(local_path), artifact_dir)


def _stored(r) -> StoredRun:
    i, d = r.info, r.data
    kw = {"tags": dict(d.tags), "params": dict(d.params), "metrics": dict(d.metrics)}
    parent = d.tags.get("mlflow.parentRunId")
    return StoredRun(i.run_id, i.run_name or "", i.experiment_id, i.status, i.start_time or 0,
                     parent_id=parent, **kw)  # fmt: skip
