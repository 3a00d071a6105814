"""`LightningLogger`: streams per-epoch metrics of a Lightning Trainer into an existing run
(step = epoch), on rank 0 only, and picklable for ddp_spawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only

from lit_mia.tracking.store import client_for, log_metric_batch


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
