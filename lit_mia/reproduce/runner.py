"""`lit-mia reproduce`: run what the chosen claims need, once per distinct experiment.

    claims = claims.select(papers, names, tier)        # unknown names / tier: ConfigError
    every claim validated in its tier (claims.validate_claim) before anything trains
    groups: claims with the same experiment and overrides share one `run.run_experiment`
        (the normal path: MLflow runs, cached shadow / reference models, cached update farms)
    each claim: verdict.measure on its group's metrics -> ClaimResult

A run that raises (anything but a ConfigError or Ctrl-C) marks its claims "not reproduced"
with the error and the others still run; its MLflow run ends FAILED as any `lit-mia run`.
"""

from __future__ import annotations

import os
import platform
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lit_mia import config
from lit_mia.errors import ConfigError
from lit_mia.reproduce.claims import (
    Claim,
    Paper,
    resolve_target,
    resolved,
    result_labels,
    select,
    validate_claim,
)
from lit_mia.reproduce.verdict import (
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    Measurement,
    measure,
    reason,
    verdict,
)


@dataclass
class RunGroup:
    """One experiment run shared by the claims that need it."""

    experiment: str
    overrides: tuple[str, ...]
    claims: list[Claim] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    cfg: Any = None  # the first target's resolved config
    run_ids: dict[str, str | None] = field(default_factory=dict)
    experiment_ids: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    scores: dict[str, dict[str, tuple]] = field(default_factory=dict)  # label -> attack -> ...
    wall_s: float = 0.0
    cpu_s: float = 0.0
    error: str = ""

    def command(self) -> str:
        return self.claims[0].command_with(self.overrides)


@dataclass
class ClaimResult:
    claim: Claim
    group: RunGroup
    verdict: str
    reason: str
    measurement: Measurement | None = None
    targets: tuple[str, ...] = ()  # the resolved target labels of a and b

    def statistic_text(self) -> str:
        """The statistic with the targets resolved to the run's labels."""
        parts = [f"{t}:{op.key}" for t, op in zip(self.targets, (self.claim.a, self.claim.b))]
        return " - ".join(parts) if parts else self.claim.statistic_text()

    @property
    def passed(self) -> bool:
        return self.verdict == REPRODUCED


@dataclass
class Reproduction:
    tier: str
    results: list[ClaimResult]
    groups: list[RunGroup]
    wall_s: float
    cpu_s: float
    tracking_uri: str
    papers: dict[str, Paper]
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[ClaimResult]:
        return [r for r in self.results if not r.passed]


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def cpu_model() -> str:
    """The processor's name (Linux /proc/cpuinfo; platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Where and from what the reproduction ran: commit, CPU, cores, torch threads, load."""
    import torch

    from lit_mia.tracking.run import git_sha

    return {
        "commit": git_sha(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def plan(
    papers: list[Paper], names: list[str], tier: str, extra: list[str] | None = None
) -> list[RunGroup]:
    """The chosen claims grouped by run, every one validated in `tier` (ConfigError first)."""
    groups: dict[tuple, RunGroup] = {}
    for c in select(papers, names, tier):
        validate_claim(c, tier, extra)
        ov = (*(c.tier_overrides(tier) or ()), *(extra or ()))
        g = groups.setdefault((c.experiment, ov), RunGroup(c.experiment, ov))
        g.claims.append(c)
    for g in groups.values():
        cfgs = resolved(g.experiment, g.overrides)
        g.labels, g.cfg = result_labels(cfgs), cfgs[0]
    return list(groups.values())


def experiment_ids(g: RunGroup) -> dict[str, str]:
    """MLflow experiment id of each of the group's runs (for links into the UI)."""
    from lit_mia import tracking

    tr = g.cfg.tracking
    store = tracking.Store(str(tr.uri), tr.artifact_root)
    out = {}
    for label, rid in g.run_ids.items():
        run = store.run(rid) if rid else None
        if run is not None:
            out[label] = run.experiment_id
    return out


def same_run_params(params) -> dict[str, str]:
    """The params that make two runs the same experiment (where they are stored does not)."""
    return {k: str(v)[:6000] for k, v in params.items() if not k.startswith("tracking.")}


def stored_runner(experiment: str, overrides: list[str]) -> dict:
    """A `runner` that trains nothing: each target's newest FINISHED run in the store whose
    logged params equal the resolved config (`lit-mia reproduce --from-store`, to judge claims
    again on runs made earlier). A target without such a run raises LookupError."""
    from lit_mia import tracking

    cfgs = resolved(experiment, tuple(overrides))
    tr = cfgs[0].tracking
    try:
        store = tracking.Store(str(tr.uri), tr.artifact_root)
    except ConfigError as e:  # no store at all: nothing stored to judge
        raise LookupError(f"no FINISHED run of {experiment}: {e}") from None
    eid = store.experiments().get(tracking.mlflow_experiment(str(tr.experiment)))
    runs = store.runs([eid], "attributes.status = 'FINISHED'") if eid else []
    out = {}
    for label, cfg in zip(result_labels(cfgs), cfgs, strict=True):
        want = same_run_params(config.flatten(cfg))
        hit = next((r for r in runs if same_run_params(r.params) == want), None)
        if hit is None:
            raise LookupError(f"no FINISHED run of {experiment} / {label} with this config")
        scores = store.scores(hit.run_id)  # the paired intervals read them as a live run's
        out[label] = tracking.TargetResult(label, hit.run_id, dict(hit.metrics), scores)
    return out


def run_group(g: RunGroup, runner: Callable | None = None) -> None:
    """Run the group's experiment through run.run_experiment and keep its metrics."""
    if runner is None:
        from lit_mia.run import run_experiment as runner
    t0, c0 = time.perf_counter(), cpu_seconds()
    try:
        results = runner(g.experiment, list(g.overrides))
        g.metrics = {label: dict(r.metrics) for label, r in results.items()}
        g.run_ids = {label: r.run_id for label, r in results.items()}
        g.scores = {label: dict(r.scores) for label, r in results.items()}
        g.experiment_ids = experiment_ids(g)
    except Exception as e:  # a failed run fails its claims, not the whole reproduction
        g.error = f"{type(e).__name__}: {e}"
        if not isinstance(e, LookupError):  # --from-store's "no run" is a verdict, not a crash
            traceback.print_exc()
    g.wall_s, g.cpu_s = time.perf_counter() - t0, cpu_seconds() - c0


def judge(g: RunGroup, c: Claim) -> ClaimResult:
    """The claim's verdict on its group's metrics."""
    ta = resolve_target(c.a.target, g.labels)
    tb = resolve_target(c.b.target, g.labels) if c.b else None
    targets = (ta,) if tb is None else (ta, tb)
    if g.error.startswith("LookupError"):  # --from-store: no stored run to judge
        return ClaimResult(c, g, NOT_RUN, g.error.partition(": ")[2], None, targets)
    if g.error:
        return ClaimResult(c, g, NOT_REPRODUCED, f"the run failed: {g.error}", None, targets)
    # index targets ("0", "1") resolve to the run's labels
    by_index = {c.a.target: g.metrics.get(ta, {})}
    scores = {c.a.target: g.scores.get(ta, {})}
    if c.b:
        by_index[c.b.target] = g.metrics.get(tb, {})
        scores[c.b.target] = g.scores.get(tb, {})
    n = None
    if c.n_key:
        n = int(OmegaConf.select(g.cfg, c.n_key))
    try:
        m = measure(c, by_index, n, scores)
    except KeyError as e:
        return ClaimResult(c, g, NOT_REPRODUCED, f"not measurable: {e.args[0]}", None, targets)
    return ClaimResult(c, g, verdict(c.band, m), reason(c.band, m), m, targets)


def reproduce(
    papers: list[Paper],
    names: list[str],
    tier: str,
    extra: list[str] | None = None,
    runner: Callable | None = None,
    on_group: Callable[[RunGroup, int, int], None] | None = None,
    groups: list[RunGroup] | None = None,
) -> Reproduction:
    """Validate, run every group, judge every claim (see the module docstring); `groups`:
    plan()'s result when the caller made it already."""
    groups = groups if groups is not None else plan(papers, names, tier, extra)
    uri = str(groups[0].cfg.tracking.uri)
    where = machine()
    t0, c0 = time.perf_counter(), cpu_seconds()
    for i, g in enumerate(groups):
        if on_group is not None:
            on_group(g, i, len(groups))
        run_group(g, runner)
    results = [judge(g, c) for g in groups for c in g.claims]
    order = {c.id: i for i, c in enumerate(c for p in papers for c in p.claims)}
    results.sort(key=lambda r: order[r.claim.id])
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    where["load_1min_after"] = round(os.getloadavg()[0], 2)
    papers_by_id = {p.id: p for p in papers}
    return Reproduction(tier, results, groups, wall, cpu, uri, papers_by_id, where)


__all__ = ["ClaimResult", "Reproduction", "RunGroup", "cpu_seconds", "plan", "reproduce"]
