"""What every attack receives and returns, whatever its kind.

An attack is a registry entry (`Attack`, collected in attacks/registry.py) whose `run(ctx)`
maps a context to an `AttackResult` (unprefixed metrics, optional per-sample scores, figures,
texts, step series). Kinds (`KINDS`):

- `membership` and `label_only`: ctx is an `AttackContext` (attacks/context.py: the trained
  target, its evaluation sets, lazily trained shadow models, a fit function, the config);
- `update_leakage`: ctx is an `UpdatesContext` (update_leakage/context.py: the farm of updated
  models and their posterior differences).

`tracking.log_result` writes any result under `attack/<name>/...`; attacks never touch MLflow.
Each entry declares its own settings: `settings` maps a config section (`attack.lira`,
`updates`, ...) to the dataclass holding that section's keys and their one default; config.py
assembles the schema from these.

Score attacks (I_B, I_A, I_V, baseline, ...) are entries with a `scorer`, which get
the shared metric set of metrics.attack_metrics: oracle threshold (`*_best`), per-class
thresholds calibrated on shadow models (`*_calibrated`), bootstrap CIs (`*_ci_low/_ci_high`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from omegaconf import DictConfig

from lit_mia.registry import lazy


@dataclass
class AttackResult:
    """One attack on one target.

    metrics: scalar metrics, unprefixed (logged as `attack/<name>/<key>`).
    scores, is_member: per-sample membership scores over the evaluation set (higher = member)
        and the truth (1 = member); when given they feed the overlaid ROC / PR plots and the
        `scores/<name>.csv` artifact. losses: per-sample CE losses, aligned with scores.
    index: dataset indices of the scored samples (for the CSV), aligned with scores.
    figures: artifact path (under the run, e.g. `plots/boundary_budget.png`) -> matplotlib Figure.
    texts: artifact path -> text (CSV, markdown).
    series: metric key -> list of values, logged with step = list position (e.g. AUC vs query
        budget, accuracy vs attack eps); the x values belong in `metrics` or a text artifact.
    facts: metrics under their full keys, outside `attack/<name>/` (e.g. the held-out epoch
        choice `updates/a_li/best_epoch` of an attack model's fit); logged once with the run's.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    scores: np.ndarray | None = None
    is_member: np.ndarray | None = None
    losses: np.ndarray | None = None
    index: np.ndarray | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)
    facts: dict[str, float] = field(default_factory=dict)


MEMBERSHIP, LABEL_ONLY, UPDATE_LEAKAGE = "membership", "label_only", "update_leakage"
KINDS = (MEMBERSHIP, LABEL_ONLY, UPDATE_LEAKAGE)


def no_shadows(cfg: DictConfig) -> int:
    return 0


@dataclass(frozen=True)
class Attack:
    """A registry entry: `run(ctx) -> AttackResult`; `check(cfg)` raises ConfigError on bad
    settings before any model is trained (called by config.validate for listed attacks);
    `shadows(cfg)` is how many of the context's shadow models (trained like the target,
    attacks/context.py) the attack will ask for, so run.py trains them up front on every rank
    (DDP fits must run on all ranks; attacks run on rank 0 only). `kind`: one of KINDS.
    `settings`: config section -> settings dataclass this attack reads (its defaults are the
    only defaults of those keys). `run`, `check`, `shadows` and `scorer` may be given as
    `"module:function"`, imported on first call (lit_mia/registry.py), so the table of entries
    loads without torch.

    A score attack gives `scorer(pred, set_name, cfg) -> (scores, losses)` instead of `run`:
    its run is `scoring.scored_result(ctx, scorer)` (the shared metric set, calibrated on
    shadow model 0) and its shadows `scoring.calibration_shadows`."""

    name: str
    run: Callable[..., AttackResult] | str | None = None
    check: Callable[[DictConfig], None] | str | None = None
    description: str = ""
    shadows: Callable[[DictConfig], int] | str = no_shadows
    kind: str = MEMBERSHIP
    settings: dict[str, type] = field(default_factory=dict)
    scorer: Callable[..., tuple] | str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"attack {self.name}: kind must be one of {KINDS}, got {self.kind}")
        if (self.run is None) == (self.scorer is None):
            raise ValueError(f"attack {self.name}: give exactly one of run and scorer")
        if self.scorer is not None:
            scorer = lazy(self.scorer)
            object.__setattr__(self, "scorer", scorer)
            run = partial(lazy("lit_mia.attacks.scoring:scored_result"), scorer=scorer)
            object.__setattr__(self, "run", run)
            if self.shadows is no_shadows:
                object.__setattr__(self, "shadows", "lit_mia.attacks.scoring:calibration_shadows")
        for name in ("run", "check", "shadows"):
            object.__setattr__(self, name, lazy(getattr(self, name)))

    @property
    def module(self) -> str:
        """The module that defines the attack's code (its scorer's or its run's)."""
        fn = self.scorer if self.scorer is not None else self.run
        return getattr(fn, "__module__", None) or type(self).__module__


__all__ = ["KINDS", "LABEL_ONLY", "MEMBERSHIP", "UPDATE_LEAKAGE", "Attack", "AttackResult"]
