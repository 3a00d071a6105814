"""The tracking layer: the only package that talks to MLflow, one job a module.

    store.py      the tracking URI, client, experiments, finding / reaping runs, tags
    run.py        `Run`: one MLflow run as a context manager (FINISHED / KILLED / FAILED,
                  never left RUNNING; inert off rank 0), version tags
    lightning.py  `LightningLogger`: a Trainer's per-epoch metrics into an existing run
    ranks.py      rank 0 or not (DDP)
    results.py    lit_mia's runs: `tracked_run` (config as params and config.yaml),
                  `log_result` (one attack's `AttackResult`), `log_placements` (which
                  node trained which model), `TargetResult`
    reading.py    `Store`, `StoredRun`: logged runs read back for the reports

Callers use the names re-exported here (`tracking.Run`, `tracking.log_result`, ...).
"""

from __future__ import annotations

from lit_mia.tracking.lightning import LightningLogger
from lit_mia.tracking.ranks import env_rank, is_rank_zero
from lit_mia.tracking.reading import Store, StoredRun, _stored
from lit_mia.tracking.results import (
    NODES_TAG,
    PLACEMENTS_ARTIFACT,
    TargetResult,
    log_placements,
    log_result,
    tracked_run,
)
from lit_mia.tracking.run import MAX_PARAMS_PER_BATCH, Run, git_sha, version_tags
from lit_mia.tracking.store import (
    EXPERIMENT_PREFIX,
    EXPERIMENT_TAGS,
    check_reachable,
    client_for,
    experiment_id,
    find_run,
    log_metric_batch,
    mlflow_experiment,
    reap_runs,
    resolve_uri,
    set_tags,
)

__all__ = [
    "EXPERIMENT_PREFIX",
    "EXPERIMENT_TAGS",
    "MAX_PARAMS_PER_BATCH",
    "NODES_TAG",
    "PLACEMENTS_ARTIFACT",
    "LightningLogger",
    "Run",
    "Store",
    "StoredRun",
    "TargetResult",
    "_stored",
    "check_reachable",
    "client_for",
    "env_rank",
    "experiment_id",
    "find_run",
    "git_sha",
    "is_rank_zero",
    "log_metric_batch",
    "log_placements",
    "log_result",
    "mlflow_experiment",
    "reap_runs",
    "resolve_uri",
    "set_tags",
    "tracked_run",
    "version_tags",
]
