"""lit_mia's runs: `tracked_run` opens a `Run` with the resolved config logged as params and
config.yaml; `log_result` writes any attack's `AttackResult` (metrics under `attack/<name>/`,
per-sample scores, histograms, figures, texts, stepped series); `log_placements` records
which node trained which model (models/backends.py); `TargetResult` is what one run returns.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from omegaconf import DictConfig

from lit_mia import metrics, plots
from lit_mia.attacks.base import AttackResult
from lit_mia.config import flatten, to_yaml
from lit_mia.metrics import keys
from lit_mia.tracking.run import Run


@dataclass
class TargetResult:
    """What one target's (or one update-leakage experiment's) run produced (rank 0; empty
    elsewhere): its label, MLflow run id and every logged scalar metric; `scores`: attack ->
    (dataset index or None, is_member, scores) of every attack with per-sample scores (the
    paired comparison across targets reads them); `compared`: the `compare/...` metrics of
    this target against the experiment's reference target, as logged on the parent run."""

    name: str
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    scores: dict[str, tuple] = field(default_factory=dict)
    compared: dict[str, float] = field(default_factory=dict)


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
    run.log_metrics(keys.attack_keys(name, res.metrics))
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
            run.log_metrics({keys.attack(name, key): float(v)}, step=step)


PLACEMENTS_ARTIFACT = "farm/placements.csv"
NODES_TAG = "lit_mia.farm.nodes"


def log_placements(run: Run, rows: Sequence[Mapping]) -> None:
    """Where this run's models were trained (rows of models/backends.Placement.row: population,
    model, node, host, seconds, group size, note) as the artifact `farm/placements.csv`, and
    the tag `lit_mia.farm.nodes`: `node(host)=count` per node, most models first. Nothing when
    no model was trained (all cached)."""
    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    run.log_text(buf.getvalue(), PLACEMENTS_ARTIFACT)
    counts = Counter(f"{r['node'][:8]}({r['host']})" for r in rows)
    run.set_tag(NODES_TAG, ", ".join(f"{k}={v}" for k, v in counts.most_common()))
