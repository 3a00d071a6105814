"""Sweep files (sweeps/<name>.yaml): search space, objectives and study settings.

A sweep names a base experiment, overrides for every trial, a search space over dotted config
keys (`params`, with `tie`s copying one sampled value to another key) and one or more
objectives. Objectives select models, so they are measured where selection may look
(docs/explanation/measurement.md, "no selection sees evaluation data"):

- `val/acc`, `val/adv_acc`, `val/loss`, `val/ver_acc`: the target's validation split, at the
  last validation epoch (never members or non-members);
- `attack/<name>/<key>`: a membership-leakage metric of an attack the experiment runs, and
  `attack/*/<key>` the largest value over all of them (the strongest attack);
- `shadow/<key>`: the calibration shadow model (shadow data only).

`target/*` accuracies (on the evaluation members and non-members) and `train/*` are refused with
a one-line error. Nothing here imports optuna (the sweep layer's study code does).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from lit_mia import config
from lit_mia.errors import ConfigError, require, unknown_name

SAMPLERS = ("tpe", "random", "grid", "nsga2")
VAL_METRICS = ("val/acc", "val/adv_acc", "val/loss", "val/ver_acc")
STRONGEST = "*"  # attack/*/<key>: max over the experiment's attacks
MAX_GRID = 100_000  # discrete spaces up to this size are enumerated for the duplicate check
# metric prefix -> the split it is measured on, for the refusal message
EVAL_SPLITS = {
    "target/test": "the evaluation non-members (test split)",
    "target/adv_test": "the evaluation non-members (test split)",
    "target/ver_test": "the evaluation non-members (test split)",
    "target/": "the evaluation members (train split)",
    "train/": "the training members",
    "leakage/": "the evaluation members and non-members",
}


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
    metric: str = "val/acc"
    direction: str = "maximize"


@dataclass
class SweepSettings(config.SweepConfig):
    """`sweep.*`: study settings. `n_trials` is the total of finished (COMPLETE) trials the
    study should hold, whoever ran them; `workers` local worker processes (`--workers`);
    storage heartbeats every `heartbeat_interval` s, a trial silent for `grace_period` s is
    failed by the next worker and its point re-run up to `max_retry` times."""

    workers: int = 1
    heartbeat_interval: int = 30
    grace_period: int = 90
    max_retry: int = 1


@dataclass
class SweepSpec:
    description: str = ""
    experiment: str = "single"
    overrides: list[str] = field(default_factory=list)
    params: dict[str, ParamSpec] = field(default_factory=dict)
    tie: dict[str, str] = field(default_factory=dict)
    objectives: list[Objective] = field(default_factory=list)
    sweep: SweepSettings = field(default_factory=SweepSettings)


def load_spec(name: str, overrides: list[str] | None = None) -> tuple[SweepSpec, list[str]]:
    """(sweep spec with `sweep.*` overrides applied, remaining experiment overrides)."""
    path = config.resolve_file(name, config.SWEEPS_DIR, "sweep")
    sweep_ov, exp_ov = [], []
    for item in overrides or []:
        (sweep_ov if item.split("=", 1)[0].strip().startswith("sweep.") else exp_ov).append(item)
    config.parse_overrides(overrides or [])  # syntax errors first
    schema = OmegaConf.structured(SweepSpec)
    spec = config._merge(schema, config._read_yaml(path), str(path))
    if spec.sweep.study_name is None:
        spec.sweep.study_name = path.stem
    spec = config._merge(spec, config._dotlist(config.parse_overrides(sweep_ov)), "overrides")
    spec = OmegaConf.to_object(spec)
    validate(spec)
    return spec, [*spec.overrides, *exp_ov]


def resolve(
    name: str, overrides: list[str] | None = None, workers: int | None = None
) -> tuple[SweepSpec, list[str], Any]:
    """(spec, experiment overrides, base experiment config) of a sweep, every check done that
    needs no study storage: the sweep file and `sweep.*` keys, `--workers`, the base
    experiment with its overrides (one target), the objectives and the searched keys. Imports
    neither torch nor Optuna, so bad input comes back at once."""
    spec, exp_overrides = load_spec(name, overrides)
    if workers is not None:
        require(workers >= 1, "--workers", ">= 1", workers)
        spec.sweep.workers = workers
    base = config.load(spec.experiment, exp_overrides)  # bad overrides fail here
    if len(config.target_names(base)) != 1:
        raise ConfigError("a sweep's base experiment must train exactly one target")
    check_objectives(spec, base)
    for key in (*spec.params, *spec.tie):
        if OmegaConf.select(base, key, default="__missing__") == "__missing__":
            raise ConfigError(f"sweep parameter {key!r} is not a config key")
    return spec, exp_overrides, base


def validate(spec: SweepSpec) -> None:
    s = spec.sweep
    require(s.n_trials >= 0, "sweep.n_trials", ">= 0", s.n_trials)
    require(s.workers >= 1, "sweep.workers (--workers)", ">= 1", s.workers)
    require(s.heartbeat_interval >= 1, "sweep.heartbeat_interval", ">= 1", s.heartbeat_interval)
    require(
        s.grace_period > s.heartbeat_interval,
        "sweep.grace_period",
        f"> sweep.heartbeat_interval ({s.heartbeat_interval})",
        s.grace_period,
    )
    require(s.max_retry >= 0, "sweep.max_retry", ">= 0", s.max_retry)
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
        check_split(o.metric)
    for dst, src in spec.tie.items():
        if src not in spec.params:
            raise ConfigError(f"tie.{dst} refers to {src!r}, not a key of params")


def check_split(metric: str) -> None:
    """Refuse objectives measured on evaluation members / non-members (selection uses the
    validation split, docs/explanation/measurement.md)."""
    for prefix, split in EVAL_SPLITS.items():
        if metric.startswith(prefix):
            raise ConfigError(
                f"objective {metric!r} is measured on {split}; sweeps select on the validation "
                f"split: use one of {', '.join(VAL_METRICS[:2])} (or attack/<name>/<key>)"
            )
    head = metric.split("/")[0]
    if head not in ("val", "attack", "shadow"):
        raise ConfigError(
            f"objective {metric!r} must start with val/, attack/ or shadow/ "
            f"(validation metrics: {', '.join(VAL_METRICS)})"
        )
    if head == "val" and metric not in VAL_METRICS:
        raise unknown_name("validation objective", metric, VAL_METRICS)


def check_objectives(spec: SweepSpec, cfg) -> None:
    """Objectives the base experiment can log: attacks it runs, val/adv_acc only with
    `trainer.val_adv_steps` > 0."""
    for o in spec.objectives:
        parts = o.metric.split("/")
        if parts[0] == "attack" and (
            len(parts) < 3 or (parts[1] != STRONGEST and parts[1] not in cfg.attacks)
        ):
            raise ConfigError(
                f"objective {o.metric!r} needs attack {parts[1] if len(parts) > 1 else '?'!r} "
                f"in attacks={list(cfg.attacks)} (or attack/*/<key> for the strongest)"
            )
        if o.metric == "val/adv_acc" and cfg.trainer.val_adv_steps <= 0:
            raise ConfigError("objective 'val/adv_acc' needs trainer.val_adv_steps > 0")


def objective_value(metric: str, logged: dict[str, float]) -> float | None:
    """The value of objective `metric` among a trial's logged metrics (None if absent);
    `attack/*/<key>` is the maximum of `attack/<name>/<key>` over the attacks that logged it."""
    from lit_mia.metrics import keys  # lazily: the sweep's config checks import no SciPy

    parts = keys.split_attack(metric)
    if parts is not None and parts[0] == STRONGEST:
        vals = [v for k, v in logged.items() if (keys.split_attack(k) or ("", ""))[1] == parts[1]]
        return max(vals) if vals else None
    return logged.get(metric)


def grid_points(params: dict[str, ParamSpec]) -> list[dict[str, Any]] | None:
    """Every point of a discrete search space (categorical, int, float with step), in a fixed
    order; None for continuous spaces or ones with more than MAX_GRID points."""
    axes = []
    for p in params.values():
        if p.type == "categorical":
            axes.append(list(p.choices))
        elif p.type == "int":
            axes.append(list(range(int(p.low), int(p.high) + 1, int(p.step or 1))))
        elif p.step is not None and not p.log:
            n = int(np.floor((p.high - p.low) / p.step + 1e-9)) + 1
            axes.append([float(p.low + i * p.step) for i in range(n)])
        else:
            return None
    if int(np.prod([len(a) for a in axes], dtype=float)) > MAX_GRID:
        return None
    return [dict(zip(params, combo)) for combo in itertools.product(*axes)]


def same_point(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal parameter dicts (floats within 1e-9, as Optuna rounds stepped floats)."""
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, float) or isinstance(w, float):
            try:
                if abs(float(v) - float(w)) > 1e-9:
                    return False
            except (TypeError, ValueError):
                return False
        elif v != w:
            return False
    return True
