"""`--dry-run` of `lit-mia run | sweep | report | audit`: every check the real command makes
before it trains, then the plan in a few lines. Nothing is trained, written or logged, and no
folder is created.

What is checked is what the real command checks before its first MLflow run, through the same
functions (`run.prepare`, `run_updates.prepare`, `auditing.checkpoint.prepare`,
`report_html.locate`, `sweep.spec.resolve`): the config (names, keys, ranges), the data set
(its files under `data.root`), the split sizes and shadow pools, the net and regime built for
the data, the Lightning trainer on this machine (an unavailable accelerator fails here as it
would for real), audit files and the checkpoint's shapes, the report's store, run and output
path. Paths are checked for writability without creating them. Servers are not contacted: a
tracking server URL (http/https) and a database storage URL are checked for form and driver;
the real command then connects first and fails within 10 s if the server does not answer.
"""

from __future__ import annotations

from urllib.parse import urlparse

from omegaconf import DictConfig

from lit_mia import config
from lit_mia.errors import ConfigError
from lit_mia.paths import creatable

HEAD = "dry run: every check passed; {} (--dry-run)"


def tracking_line(cfg: DictConfig) -> str:
    """Where MLflow would write, checked without creating anything."""
    from lit_mia import tracking

    tr = cfg.tracking
    uri, artifacts = tracking.resolve_uri(str(tr.uri), tr.artifact_root, create=False)
    experiment = tracking.mlflow_experiment(str(tr.experiment))
    if uri.startswith("sqlite:///"):
        state = creatable(uri[len("sqlite:///") :], "tracking.uri")
        where = f"{uri} ({state}), artifacts {artifacts}"
    elif uri.startswith(("http://", "https://")):
        if not urlparse(uri).hostname:
            raise ConfigError(f"tracking.uri {uri!r} names no host")
        where = f"{uri} (tracking server, not contacted by --dry-run)"
    else:
        where = f"{uri} (not checked by --dry-run)"
    return f"tracking: experiment {experiment!r} in {where}"


def _target_line(cfg: DictConfig, bundle, split, n_shadow: int) -> str:
    from lit_mia import comparison

    t, n, d, tr = cfg.target, cfg.net, cfg.data, cfg.trainer
    regime = f"{t.name}" + (f" eps {t.eps}" if t.get("eps") else "")
    return (
        f"  {comparison.label_of(cfg)}: {regime}, net {n.name} (width {n.width}), "
        f"{tr.max_epochs} epochs on {tr.accelerator} x{tr.devices} ({tr.strategy}); "
        f"data {d.name} ({len(bundle)} samples): members {len(split.members)}, "
        f"non-members {len(split.nonmembers)}, validation {len(split.validation)}, "
        f"shadow pool {len(split.shadow)}; attacks {', '.join(cfg.attacks)}; "
        f"shadow models {n_shadow}"
    )


def experiment_lines(cfgs: list[DictConfig]) -> list[str]:
    """The checked plan of one experiment (its targets or its update-leakage pools)."""
    from lit_mia import run

    base = cfgs[0]
    if run.is_updates_leak(base):
        from lit_mia.run_updates import prepare

        bundle, pools = prepare(base)
        sizes = ", ".join(f"{k} {len(v)}" for k, v in pools.to_dict().items() if len(v))
        return [
            f"experiment {base.name}: update leakage on {base.data.name} ({len(bundle)} "
            f"samples), attacks {', '.join(base.attacks)}; pools: {sizes}"
        ]
    data = run.prepare(cfgs)
    runs = "one MLflow run" if len(cfgs) == 1 else f"{len(cfgs)} MLflow runs under one parent"
    lines = [f"experiment {base.name}: {len(cfgs)} target(s), {runs}"]
    for cfg, (bundle, split) in zip(cfgs, data, strict=True):
        lines.append(_target_line(cfg, bundle, split, run.shadows_to_train(cfg, split)))
    return lines


def run_plan(experiment: str, overrides: list[str]) -> list[str]:
    cfgs = config.per_target(experiment, overrides)
    return [
        HEAD.format("nothing trained or logged"),
        *experiment_lines(cfgs),
        tracking_line(cfgs[0]),
    ]


def sweep_plan(name: str, overrides: list[str], workers: int | None) -> list[str]:
    from lit_mia.sweep import storage
    from lit_mia.sweep.spec import resolve

    spec, exp_overrides, base = resolve(name, overrides, workers)
    s, tr = spec.sweep, base.tracking
    url = storage.default_url(s.storage, str(tr.uri), tr.artifact_root, create=False)
    space = "; ".join(
        f"{k} in {p.choices}" if p.type == "categorical" else f"{k} {p.type} [{p.low}, {p.high}]"
        for k, p in spec.params.items()
    )
    objectives = ", ".join(f"{o.direction} {o.metric}" for o in spec.objectives)
    return [
        HEAD.format("no trial run, nothing logged"),
        f"sweep {name}: study {s.study_name!r} in {storage.check_offline(url)}",
        f"  {s.n_trials} COMPLETE trials in all (the study's total), {s.workers} worker(s), "
        f"sampler {s.sampler}, seed {s.seed}",
        f"  objectives: {objectives}",
        f"  search space: {space}",
        "  the base experiment, checked at its own values:",
        *experiment_lines(config.per_target(spec.experiment, exp_overrides)),
        tracking_line(base),
    ]


def report_plan(target: str, overrides: list[str], output: str | None) -> list[str]:
    from lit_mia.report_html import locate

    where = locate(target, overrides, output)
    top = where.top
    return [
        HEAD.format("nothing written or logged"),
        f"report of run {top.name!r} ({top.run_id}, {top.status}) in {where.store.uri}",
        f"  would write {where.path.absolute()} ({creatable(where.path, 'report')})",
    ]


def audit_plan(checkpoint: str, overrides: list[str]) -> list[str]:
    from lit_mia import run
    from lit_mia.auditing.checkpoint import prepare

    p = prepare(checkpoint, overrides)
    return [
        HEAD.format("nothing trained or logged"),
        f"audit of {checkpoint}: state dict matches net {p.cfg.net.name} on {p.cfg.data.name}",
        _target_line(p.cfg, p.bundle, p.split, run.shadows_to_train(p.cfg, p.split)),
        tracking_line(p.cfg),
    ]


__all__ = ["audit_plan", "report_plan", "run_plan", "sweep_plan", "tracking_line"]
