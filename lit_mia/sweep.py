"""Optuna sweeps over an experiment (`lit-mia sweep SWEEP [key=value ...]`).

A sweep file (sweeps/<name>.yaml) names a base experiment, overrides for every trial, a search
space over dotted config keys, and one or more objectives (metric keys of the trial's target
run, e.g. `target/test_acc`, `attack/ia/advantage_best`). The study lives on real storage:
SQLite `optuna.db` beside the MLflow store by default, any Optuna RDB URL via `sweep.storage`
(e.g. postgresql://... for distributed workers).

Resuming: rerunning the same command loads the study (completed trials kept) and runs
`sweep.n_trials` more. Trials that FAILED (an exception or Ctrl-C ends a trial FAIL, and its
MLflow run FAILED/KILLED) are re-enqueued with the same parameters first, so no point of the
search is lost; SIGTERM (which Lightning turns into SystemExit) fails the trial the same way.
A worker killed outright leaves its trial RUNNING: storage heartbeats (30 s) let the next
worker fail it after 90 s and retry its parameters (optuna's RetryFailedTrialCallback).
MLflow: one parent run per study (reused on resume), one child run per trial.
CLI overrides starting with `sweep.` set the sweep; all others go to the base experiment.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lit_mia import config, tracking
from lit_mia.errors import ConfigError, unknown_name
from lit_mia.run import run_experiment


@dataclass
class ParamSpec:
    """One search dimension: float/int with low/high (step, log), or categorical choices."""

    type: str = "float"
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: list[Any] | None = None


@dataclass
class Objective:
    metric: str = "target/test_acc"
    direction: str = "maximize"


@dataclass
class SweepSpec:
    description: str = ""
    experiment: str = "single"
    overrides: list[str] = field(default_factory=list)
    params: dict[str, ParamSpec] = field(default_factory=dict)
    tie: dict[str, str] = field(default_factory=dict)
    objectives: list[Objective] = field(default_factory=list)
    sweep: config.SweepConfig = field(default_factory=config.SweepConfig)


SAMPLERS = ("tpe", "random", "grid")


def load_spec(name: str, overrides: list[str] | None = None) -> tuple[SweepSpec, list[str]]:
    """(sweep spec with `sweep.*` overrides applied, remaining experiment overrides)."""
    path = config.resolve_file(name, config.SWEEPS_DIR, "sweep")
    sweep_ov, exp_ov = [], []
    for item in overrides or []:
        (sweep_ov if item.split("=", 1)[0].strip().startswith("sweep.") else exp_ov).append(item)
    config.parse_overrides(overrides or [])  # syntax errors first
    schema = OmegaConf.structured(SweepSpec)
    raw = config._read_yaml(path)
    spec = config._merge(schema, raw, str(path))
    if spec.sweep.study_name is None:
        spec.sweep.study_name = path.stem
    spec = config._merge(spec, config._dotlist(config.parse_overrides(sweep_ov)), "overrides")
    spec = OmegaConf.to_object(spec)
    _validate(spec)
    return spec, [*spec.overrides, *exp_ov]


def _validate(spec: SweepSpec) -> None:
    s = spec.sweep
    if s.n_trials < 0:
        raise ConfigError(f"sweep.n_trials must be >= 0, got {s.n_trials}")
    if s.sampler not in SAMPLERS:
        raise unknown_name("sweep.sampler", s.sampler, SAMPLERS)
    if not spec.params:
        raise ConfigError("params must define at least one search dimension")
    if not spec.objectives:
        raise ConfigError("objectives must name at least one metric")
    for key, p in spec.params.items():
        if p.type == "categorical":
            if not p.choices:
                raise ConfigError(f"params.{key}.choices must be a non-empty list")
        elif p.type in ("float", "int"):
            if p.low is None or p.high is None or p.low > p.high:
                raise ConfigError(f"params.{key} needs low <= high, got {p.low}..{p.high}")
            if p.log and p.low <= 0:
                raise ConfigError(f"params.{key}.low must be > 0 with log=true, got {p.low}")
        else:
            raise unknown_name(f"params.{key}.type", p.type, ("float", "int", "categorical"))
    for o in spec.objectives:
        if o.direction not in ("maximize", "minimize"):
            raise unknown_name("objectives.direction", o.direction, ("maximize", "minimize"))
    for dst, src in spec.tie.items():
        if src not in spec.params:
            raise ConfigError(f"tie.{dst} refers to {src!r}, not a key of params")


def _check_objectives(spec: SweepSpec, cfg) -> None:
    for o in spec.objectives:
        parts = o.metric.split("/")
        if parts[0] == "attack" and (len(parts) < 3 or parts[1] not in cfg.attacks):
            raise ConfigError(
                f"objective {o.metric!r} needs attack {parts[1] if len(parts) > 1 else '?'!r} "
                f"in attacks={list(cfg.attacks)}"
            )
        if parts[0] not in ("attack", "target", "shadow"):
            raise ConfigError(f"objective {o.metric!r} must start with target/, attack/ or shadow/")


def _suggest(trial, key: str, p: ParamSpec) -> Any:
    if p.type == "categorical":
        return trial.suggest_categorical(key, list(p.choices))
    if p.type == "int":
        return trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)


def storage_url(spec: SweepSpec, cfg) -> str:
    """sweep.storage, or SQLite `optuna.db` beside the MLflow SQLite store."""
    if spec.sweep.storage:
        return spec.sweep.storage
    uri, _ = tracking.resolve_uri(cfg.tracking.uri, cfg.tracking.artifact_root)
    if uri.startswith("sqlite:///"):
        return f"sqlite:///{Path(uri[len('sqlite:///') :]).parent / 'optuna.db'}"
    return f"sqlite:///{Path('mlruns').resolve() / 'optuna.db'}"


def _make_sampler(spec: SweepSpec, n_done: int):
    import optuna

    seed = spec.sweep.seed + n_done  # a resumed study does not replay the same draws
    if spec.sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sweep.sampler == "grid":
        space = {}
        for k, p in spec.params.items():
            if p.type != "categorical":
                raise ConfigError(f"sweep.sampler=grid needs categorical params; {k} is {p.type}")
            space[k] = list(p.choices)
        return optuna.samplers.GridSampler(space, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _storage(url: str):
    import optuna

    # Heartbeats: a worker killed outright (kill -9, a lost node) leaves its trial RUNNING; after
    # the grace period the next worker fails it and re-enqueues its parameters.
    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=30,
        grace_period=90,
        failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=3),
    )


def _parent_run_id(cfg, study_name: str, storage: str) -> str | None:
    """The MLflow parent run of this study, if an earlier invocation created one."""
    tr = cfg.tracking
    return tracking.find_run(
        tr.uri,
        tr.experiment,
        {"lit_mia.study": study_name, "lit_mia.storage": storage},
        artifact_root=tr.artifact_root,
    )


def run_sweep(name: str, overrides: list[str] | None = None) -> Any:
    """Create or resume the study and run `sweep.n_trials` trials. Returns the study."""
    import optuna

    spec, exp_overrides = load_spec(name, overrides)
    base = config.load(spec.experiment, exp_overrides)  # bad overrides fail before any trial
    if len(config.target_names(base)) != 1:
        raise ConfigError("a sweep's base experiment must train exactly one target")
    _check_objectives(spec, base)
    for key in (*spec.params, *spec.tie):
        if OmegaConf.select(base, key, default="__missing__") == "__missing__":
            raise ConfigError(f"sweep parameter {key!r} is not a config key")

    url = storage_url(spec, base)
    study_name = spec.sweep.study_name
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(url)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        load_if_exists=True,
        directions=[o.direction for o in spec.objectives],
    )
    _check_same_objectives(study, spec)
    retried = {t.user_attrs.get("retry_of") for t in study.trials} | {
        optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) for t in study.trials
    }
    for t in study.trials:
        if t.state == optuna.trial.TrialState.FAIL and t.number not in retried:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
    study.sampler = _make_sampler(spec, len(study.trials))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([o.metric for o in spec.objectives])

    tr = base.tracking
    parent_id = _parent_run_id(base, study_name, url)
    with tracking.Run(
        tr.uri,
        tr.experiment,
        f"sweep/{study_name}",
        artifact_root=tr.artifact_root,
        run_id=parent_id,
        tags={"lit_mia.study": study_name, "lit_mia.storage": url, "lit_mia.sweep": name},
    ) as parent:
        if parent_id is None:
            parent.log_params(
                {
                    "sweep." + k: v
                    for k, v in config.flatten(OmegaConf.structured(spec.sweep)).items()
                }
                | {
                    "sweep.experiment": spec.experiment,
                    "sweep.objectives": ",".join(
                        f"{o.metric}:{o.direction}" for o in spec.objectives
                    ),
                }
            )
            parent.log_text(OmegaConf.to_yaml(OmegaConf.structured(spec)), "sweep.yaml")

        def objective(trial):
            values = {k: _suggest(trial, k, p) for k, p in spec.params.items()}
            ties = {dst: values[src] for dst, src in spec.tie.items()}
            trial_ov = [*exp_overrides, *(f"{k}={v}" for k, v in {**values, **ties}.items())]
            try:
                results = run_experiment(
                    spec.experiment,
                    trial_ov,
                    parent_run_id=parent.run_id,
                    run_name=f"{study_name}/trial-{trial.number}",
                )
            except SystemExit as e:  # Lightning turns SIGTERM into SystemExit: fail the trial
                raise KeyboardInterrupt(f"terminated ({e})") from e
            (res,) = results.values()
            trial.set_user_attr("mlflow_run_id", res.run_id or "")
            missing = [o.metric for o in spec.objectives if o.metric not in res.metrics]
            if missing:
                raise ConfigError(f"objective metric(s) {missing} were not produced by the run")
            return tuple(res.metrics[o.metric] for o in spec.objectives)

        study.optimize(objective, n_trials=spec.sweep.n_trials, gc_after_trial=True)
        table = summary_table(study, spec)
        parent.log_text(table, "summary.md")
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        parent.log_metrics({"sweep/n_complete": len(done), "sweep/n_trials": len(study.trials)})
    print(table)
    print(f"\nstudy {study_name!r} in {url}: {len(done)} complete of {len(study.trials)} trials")
    return study


def _check_same_objectives(study, spec: SweepSpec) -> None:
    names = study.metric_names
    wanted = [o.metric for o in spec.objectives]
    if names is not None and list(names) != wanted:
        raise ConfigError(
            f"study {study.study_name!r} was created with objectives {list(names)}, not {wanted}; "
            "use another sweep.study_name"
        )


def summary_table(study, spec: SweepSpec) -> str:
    """Markdown table of every trial: number, state, params, objective values; * = best."""
    import optuna

    best = (
        {t.number for t in study.best_trials}
        if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
        else set()
    )
    keys = list(spec.params)
    metrics_ = [o.metric for o in spec.objectives]
    head = "| trial | state | " + " | ".join(keys + metrics_) + " |"
    rows = [head, "|---" * (len(keys) + len(metrics_) + 2) + "|"]
    for t in study.trials:
        p = [_fmt(t.params.get(k)) for k in keys]
        v = [_fmt(x) for x in (t.values or [None] * len(metrics_))]
        mark = "*" if t.number in best else ""
        rows.append(f"| {t.number}{mark} | {t.state.name} | " + " | ".join(p + v) + " |")
    return "\n".join(rows)


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if isinstance(x, float) else str(x)
