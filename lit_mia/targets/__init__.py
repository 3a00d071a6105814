"""Training regimes as LightningModules, by name (`target.name`).

Each regime class names its settings dataclass (`cls.Settings`, in targets/settings.py with the
paper's defaults and a `validate(section, cfg)` classmethod); lit_mia/config/ builds the `target`
section's schema from `settings_class(name)` without importing torch. `TARGETS` is a lazy
registry (lit_mia/registry.py): a regime's module is imported when its class is first used.
Adding a regime: its settings class in settings.py, its LightningModule module, one line in
`TARGETS` and `SETTINGS` here, its test.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from lit_mia.errors import ConfigError
from lit_mia.registry import Ref, Registry
from lit_mia.targets import settings as _s
from lit_mia.targets.settings import DistSettings, PGDSettings, TargetSettings, TradesSettings


def _check_plugin(name: str, cls: object) -> str | None:
    from lit_mia.targets.base import TargetModule  # a plug-in regime is being imported anyway

    ok = isinstance(cls, type) and issubclass(cls, TargetModule) and hasattr(cls, "Settings")
    return None if ok else "a target regime must be a TargetModule subclass with a Settings class"


TARGETS = Registry(  # + entry points of group lit_mia.targets (plugins.py)
    "targets",
    {
        "natural": "lit_mia.targets.natural:NaturalTarget",
        "pgd": "lit_mia.targets.adversarial:PGDTarget",
        "trades": "lit_mia.targets.trades:TradesTarget",
        "dist": "lit_mia.targets.distributional:DistTarget",
        "ibp": "lit_mia.targets.verifiable:IBPTarget",
        "diffai": "lit_mia.targets.verifiable:DiffAITarget",
        "dual": "lit_mia.targets.verifiable:DualTarget",
    },
    _check_plugin,
)
"""Regime name -> its LightningModule class (imported on first access)."""

SETTINGS: dict[str, type[TargetSettings]] = {
    "natural": _s.TargetSettings,
    "pgd": _s.PGDSettings,
    "trades": _s.TradesSettings,
    "dist": _s.DistSettings,
    "ibp": _s.IBPSettings,
    "diffai": _s.DiffAISettings,
    "dual": _s.DualSettings,
}
"""Built-in regime name -> its settings class (`TARGETS[name].Settings`, without torch)."""


_CLASSES = {
    "TargetModule": "lit_mia.targets.base:TargetModule",
    "NaturalTarget": "lit_mia.targets.natural:NaturalTarget",
    "PGDTarget": "lit_mia.targets.adversarial:PGDTarget",
    "TradesTarget": "lit_mia.targets.trades:TradesTarget",
    "DistTarget": "lit_mia.targets.distributional:DistTarget",
}


def __getattr__(name: str):
    """`from lit_mia.targets import PGDTarget`: the LightningModules import torch, so this
    package loads them on first use (PEP 562) and stays importable without torch."""
    if name in _CLASSES:
        return Ref(_CLASSES[name]).load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def settings_class(name: str) -> type[TargetSettings]:
    """The settings dataclass of regime `name`: a built-in's from targets/settings.py, a
    plug-in's from its class (which imports the plug-in)."""
    return SETTINGS[name] if name in SETTINGS else TARGETS[name].Settings


__all__ = [
    "build_target",
    "parse_target_entry",
    "target_names",
    "eval_eps",
    "settings_class",
    "settings_of",
    "SETTINGS",
    "TARGETS",
    "TargetSettings",
    "PGDSettings",
    "TradesSettings",
    "DistSettings",
    *_CLASSES,
]


def build_target(cfg, net, train_idx=None):
    """The target LightningModule for a resolved experiment config (`cfg.target` selects it).

    The per-epoch robustness check uses the regime's own eps when it has one, else the
    experiment's attack eps (natural targets), as CCS'19 reports adversarial accuracy.
    """
    cls = TARGETS[cfg.target.name]
    return cls(
        net,
        settings_of(cls, cfg.target),
        eval_eps=eval_eps(cfg),
        val_adv_steps=cfg.trainer.val_adv_steps,
        train_idx=train_idx,
        seed=cfg.seed,
        net_name=str(cfg.net.name),  # named in "cannot bound layer ..." errors
    )


def settings_of(cls, section) -> TargetSettings:
    """The regime's settings object from a resolved `target` config section."""
    data = (
        OmegaConf.to_container(section, resolve=True) if OmegaConf.is_config(section) else section
    )
    return cls.Settings(**data)


def eval_eps(cfg) -> float:
    """The eps of the final `target/adv_*_acc`: the training eps, or attack.eps if natural."""
    t = cfg.target
    return float(t.eps) if TARGETS[t.name].adversarial and t.eps > 0 else float(cfg.attack.eps)


def parse_target_entry(entry: str) -> tuple[str, list[str]]:
    """`"pgd ratio=0.5 eps=0.2"` -> ("pgd", ["ratio=0.5", "eps=0.2"])."""
    parts = str(entry).split()
    if not parts:
        raise ConfigError("targets entries must not be empty")
    for kv in parts[1:]:
        if "=" not in kv or kv.startswith("="):
            raise ConfigError(f"cannot parse {kv!r} in targets entry {entry!r}: expected key=value")
    return parts[0], parts[1:]


def target_names(cfg: DictConfig) -> list[str]:
    """The regime name of every target of the experiment."""
    if not cfg.targets:
        return [str(cfg.target.name)]
    return [parse_target_entry(e)[0] for e in cfg.targets]
