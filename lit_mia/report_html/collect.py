"""What a report shows, read back from the tracking store (through lit_mia.tracking.Store).

`resolve` turns the TARGET of `lit-mia report` into the run the report is about (an
experiment's newest top-level run, a run id, or a sweep's parent run), `collect` reads that run,
its targets (children, or the run itself) and, for sweeps, the trials, with their metrics,
per-sample scores, plots (as PNG bytes), config and split hash. Bad input is a one-line
ConfigError that lists what exists.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lit_mia.errors import ConfigError
from lit_mia.metrics import keys, read_scores_table
from lit_mia.tracking import Store, StoredRun, mlflow_experiment

RUN_ID = re.compile(r"[0-9a-f]{32}")
SWEEP_TAGS = ("lit_mia.sweep", "lit_mia.study")


@dataclass
class AttackData:
    """One attack on one target: its metrics (`attack/<name>/` stripped), per-sample scores,
    and its own plots (histograms) as PNG bytes by artifact path."""

    name: str
    metrics: dict[str, float]
    scores: np.ndarray | None = None
    is_member: np.ndarray | None = None
    images: dict[str, bytes] = field(default_factory=dict)


@dataclass
class TargetData:
    """One trained target (one MLflow run) and everything logged about it."""

    run: StoredRun
    label: str
    metrics: dict[str, float]  # every logged metric, latest value
    attacks: dict[str, AttackData]
    images: dict[str, bytes]  # plots not owned by an attack (ROC, PR, leakage, grids)
    config_yaml: str = ""
    split_hash: str | None = None

    @property
    def n_eval(self) -> int | None:
        """Members in the evaluation set (the attacks' score files), for accuracy CIs."""
        for a in self.attacks.values():
            if a.is_member is not None:
                return int(a.is_member.sum())
        return None


@dataclass
class Study:
    """The report's subject: the top run, its targets and, for sweeps, the trials."""

    kind: str  # "experiment" (several targets) | "run" (one target) | "sweep"
    top: StoredRun
    targets: list[TargetData]
    uri: str
    experiment: str
    trials: list[StoredRun] = field(default_factory=list)
    objectives: list[tuple[str, str]] = field(default_factory=list)  # (metric, direction)
    images: dict[str, bytes] = field(default_factory=dict)  # the top run's own plots
    texts: dict[str, str] = field(default_factory=dict)  # the top run's config / tables


# ---------------------------------------------------------------- resolving TARGET
def resolve(store: Store, target: str, configured: str | None = None) -> StoredRun:
    """The run `target` names: a run id, a sweep (file name or study name), or an experiment
    (MLflow name, its `lit_mia/` short name, or `configured`: the MLflow experiment of the
    conf/experiment file of that name). Refuses runs still RUNNING."""
    run = _resolve(store, target, configured)
    if run.status == "RUNNING":
        raise ConfigError(
            f"run {run.run_id} ({run.name}) is still RUNNING; report it once it has finished"
        )
    return run


def _resolve(store: Store, target: str, configured: str | None) -> StoredRun:
    if RUN_ID.fullmatch(target):
        run = store.run(target)
        if run is None:
            raise ConfigError(f"unknown run id {target!r} in {store.uri}")
        return run
    for tag in SWEEP_TAGS if "'" not in target else ():  # (a quote would break the filter)
        found = store.runs(where=f"tags.`{tag}` = '{target}'")
        if found:
            return found[0]
    exps = store.experiments()
    for name in (configured, mlflow_experiment(target), target):
        if name and name in exps:
            top = [r for r in store.runs([exps[name]]) if r.parent_id is None]
            if not top:
                raise ConfigError(f"experiment {name!r} has no runs in {store.uri}")
            return newest_finished(top)
    names = sorted(n for n in exps if n != "Default")
    sweeps = sorted({r.tags["lit_mia.sweep"] for r in store.runs() if "lit_mia.sweep" in r.tags})
    raise ConfigError(
        f"unknown experiment, run id or sweep {target!r} in {store.uri}; experiments: "
        f"{', '.join(names) or 'none'}; sweeps: {', '.join(sweeps) or 'none'}"
    )


def newest_finished(runs: list[StoredRun]) -> StoredRun:
    """The newest FINISHED run of `runs` (newest first); the newest run when none finished
    (its report then carries a KILLED / FAILED banner)."""
    return next((r for r in runs if r.status == "FINISHED"), runs[0])


def skipped_newer(store: Store, run: StoredRun) -> list[StoredRun]:
    """Top-level runs of `run`'s experiment started after it (the ones a report by experiment
    name passed over because they did not finish)."""
    top = [r for r in store.runs([run.experiment_id]) if r.parent_id is None]
    return [r for r in top if r.start_time > run.start_time]


def which(run: StoredRun, skipped: list[StoredRun]) -> str:
    """One line saying which run is reported, and which newer ones were not."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(run.start_time / 1000))
    line = f"reporting run {run.run_id} ({run.name}, {run.status}, started {when})"
    if run.status != "FINISHED":
        line += "; it did not finish: the report says so on its first screen"
    if skipped:
        shown = ", ".join(f"{r.run_id[:8]} {r.status}" for r in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        line += f"; newer runs not finished, skipped: {shown}{more} (pass a run id to report one)"
    return line


# ---------------------------------------------------------------- reading runs
def _children(store: Store, run: StoredRun) -> list[StoredRun]:
    """Direct children of `run`, oldest first (the order they ran)."""
    kids = store.runs([run.experiment_id], f"tags.`mlflow.parentRunId` = '{run.run_id}'")
    return sorted(kids, key=lambda r: r.start_time)


def _label(run: StoredRun) -> str:
    return run.tags.get("lit_mia.label") or run.name or run.run_id[:8]


def _attack_names(run: StoredRun) -> list[str]:
    names = {k.split("/")[1] for k in run.metrics if keys.is_attack(k) and k.count("/") >= 2}
    listed = re.findall(r"[A-Za-z0-9_]+", run.params.get("attacks", ""))
    return [a for a in listed if a in names] + sorted(names - set(listed))


def _read_scores(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    got = read_scores_table(path.read_text())
    return None if got is None else (got[2], got[1])


def _target(store: Store, run: StoredRun, tmp: Path, label: str | None = None) -> TargetData:
    files = store.files(run.run_id)
    attacks = {}
    for name in _attack_names(run):
        prefix = keys.attack_prefix(name)
        metrics = {k[len(prefix) :]: v for k, v in run.metrics.items() if k.startswith(prefix)}
        attacks[name] = AttackData(name, metrics)
    images, config_yaml, split_hash = {}, "", None
    for path in files:
        if path.endswith(".png"):
            data = store.download(run.run_id, path, tmp).read_bytes()
            owner = next((a for a in attacks if path.startswith(f"plots/{a}_")), None)
            (attacks[owner].images if owner else images)[path] = data
        elif path.startswith("scores/") and path.endswith(".csv"):
            name = Path(path).stem
            if name in attacks:
                got = _read_scores(store.download(run.run_id, path, tmp))
                if got is not None:
                    attacks[name].scores, attacks[name].is_member = got
        elif path == "config.yaml":
            config_yaml = store.download(run.run_id, path, tmp).read_text()
        elif path in ("split/indices.json", "pools/indices.json"):
            digest = hashlib.sha256(store.download(run.run_id, path, tmp).read_bytes())
            split_hash = f"sha256:{digest.hexdigest()[:16]} ({path})"
    return TargetData(
        run, label or _label(run), dict(run.metrics), attacks, images, config_yaml, split_hash
    )


def _objectives(run: StoredRun) -> list[tuple[str, str]]:
    out = []
    for item in run.params.get("sweep.objectives", "").split(","):
        metric, _, direction = item.rpartition(":")
        if metric:
            out.append((metric, direction))
    return out


def collect(store: Store, top: StoredRun) -> Study:
    """Read everything the report shows about `top` (downloads go to a temporary folder)."""
    exp = {v: k for k, v in store.experiments().items()}.get(top.experiment_id, "?")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        kids = _children(store, top)
        trials: list[StoredRun] = []
        if any(t in top.tags for t in SWEEP_TAGS):
            kind, trials = "sweep", kids
            targets = []
            for trial in kids:
                sub = _children(store, trial)
                for r in sub or [trial]:
                    label = f"{trial.name} {_label(r)}" if sub else trial.name
                    targets.append(_target(store, r, tmp, label))
        elif kids:
            kind, targets = "experiment", [_target(store, r, tmp) for r in kids]
        else:
            kind, targets = "run", [_target(store, top, tmp)]
        own = _target(store, top, tmp) if kind != "run" else targets[0]
        texts, top_files = {}, store.files(top.run_id)
        for path in ("comparison.md", "summary.md", "sweep.yaml"):
            if path in top_files:
                texts[path] = store.download(top.run_id, path, tmp).read_text()
    return Study(
        kind,
        top,
        targets,
        store.uri,
        exp,
        trials,
        _objectives(top),
        own.images if kind != "run" else {},
        {**texts, "config.yaml": own.config_yaml},
    )


__all__ = ["AttackData", "Study", "TargetData", "collect", "resolve"]
