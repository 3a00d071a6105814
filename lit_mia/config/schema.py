"""The experiment schema: the top-level dataclasses (tracking, data, net, trainer, sweep) and the
schema of one target regime, assembled from the registries (`schema`, `schema_keys`); the
repository's paths (ROOT, CONF_DIR, SWEEPS_DIR).
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lit_mia.attacks.registry import settings_sections
from lit_mia.attacks.settings import AttackSettings
from lit_mia.config.output import flatten
from lit_mia.models.farm_settings import FarmSettings
from lit_mia.targets import settings_class

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
SWEEPS_DIR = ROOT / "sweeps"
GROUPS = ("data", "net", "target", "attack", "trainer")


@dataclass
class TrackingConfig:
    """Where MLflow writes. MLflow 3 refuses a bare ./mlruns file store: SQLite inside mlruns/."""

    uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_root: str | None = None  # None: beside the SQLite file (mlruns/artifacts)
    experiment: str = "lit_mia"
    log_checkpoint: bool = True


@dataclass
class DataConfig:
    """Dataset and membership split sizes (counts of samples; see data/splits.py)."""

    name: str = "mnist5k"
    root: str = "data_root"
    download: bool = False
    n_members: int = 1000
    n_nonmembers: int = 1000
    n_validation: int = 250
    n_shadow: int = 2000
    n_probe: int = 0
    batch_size: int = 128
    num_workers: int = 0
    augment: str = "none"  # training batches only: none | flip_shift | shift (datamodule.py)


@dataclass
class NetConfig:
    """Architecture from lit_mia.nets with its capacity knob `width` (channel multiplier)."""

    name: str = "fmnist_cnn"
    width: float = 1.0
    depth: int | None = None
    dropout: float = 0.0
    activation: str = "relu"


@dataclass
class TrainerConfig:
    """Lightning Trainer settings: cpu (default), gpu, ddp."""

    name: str = "cpu"
    max_epochs: int = 20
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: Any = True  # true | false | "warn" (GPU kernels without a deterministic version)
    enable_progress_bar: bool = True
    log_every_n_steps: int = 10
    val_adv_steps: int = 10
    val_every_n_epochs: int = 1


@dataclass
class SweepConfig:
    """Optuna study settings; `storage: null` = SQLite at mlruns/optuna.db."""

    n_trials: int = 4
    storage: str | None = None
    study_name: str | None = None
    sampler: str = "tpe"
    seed: int = 0


@dataclass
class ExperimentBase:
    """The keys of one `lit-mia run` that are not a registry's (see `schema`)."""

    name: str = "single"
    description: str = ""
    label: str = ""  # this target's entry in `targets` (run name); set by per_target
    seed: int = 0
    targets: list[str] = field(default_factory=list)
    attacks: list[str] = field(default_factory=lambda: ["ib", "ia"])
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    net: NetConfig = field(default_factory=NetConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    farm: FarmSettings = field(default_factory=FarmSettings)  # where models train (backends.py)
    compare_by: str = ""  # parent run: plot each attack's AUC against this key


def _section(cls: type) -> Any:
    return field(default_factory=cls)


@cache
def schema(target: str = "natural") -> type:
    """The experiment dataclass for regime `target`: ExperimentBase plus `target` (the regime's
    settings class), `attack` (AttackSettings plus every registered `attack.<x>` section) and
    the registered top-level sections (`updates`)."""
    sections = settings_sections()
    sub = [
        (k[len("attack.") :], c, _section(c))
        for k, c in sections.items()
        if k.startswith("attack.")
    ]
    attack = make_dataclass("AttackConfig", sub, bases=(AttackSettings,))
    top = [(k, c, _section(c)) for k, c in sections.items() if "." not in k]
    regime = settings_class(target)
    fields = [("target", regime, _section(regime)), ("attack", attack, _section(attack)), *top]
    return make_dataclass(f"ExperimentConfig_{target}", fields, bases=(ExperimentBase,))


ExperimentConfig = schema()
"""The schema with the default regime (natural)."""


@cache
def _schema_config(target: str) -> DictConfig:
    """`schema(target)` as an OmegaConf config, built once per regime (40% of a `load`):
    `load` merges into a copy of it (OmegaConf.merge deep-copies its first input)."""
    return OmegaConf.structured(schema(target))


def schema_keys(target: str = "natural") -> list[str]:
    """All dotted keys of the experiment schema for regime `target` (for docs and tests)."""
    return sorted(flatten(OmegaConf.structured(schema(target))))
