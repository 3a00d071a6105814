"""Training regimes as LightningModules, by name (`target.name`).

Each regime class names its settings dataclass (`cls.Settings`, next to its code, with the
paper's defaults and a `validate(section, cfg)` classmethod); config.py builds the `target`
section's schema from it. Adding a regime: its module (settings + LightningModule), one
registry line here, its test.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from lit_mia import plugins
from lit_mia.errors import ConfigError
from lit_mia.targets.adversarial import PGDSettings, PGDTarget
from lit_mia.targets.base import TargetModule, TargetSettings
from lit_mia.targets.distributional import DistSettings, DistTarget
from lit_mia.targets.natural import NaturalTarget
from lit_mia.targets.trades import TradesSettings, TradesTarget
from lit_mia.targets.verifiable import DiffAITarget, DualTarget, IBPTarget

TARGETS: dict[str, type[TargetModule]] = {
    "natural": NaturalTarget,
    "pgd": PGDTarget,
    "trades": TradesTarget,
    "dist": DistTarget,
    "ibp": IBPTarget,
    "diffai": DiffAITarget,
    "dual": DualTarget,
}
TARGETS = plugins.merged(  # entry points of group lit_mia.targets (plugins.py)
    "targets",
    TARGETS,
    lambda n, c: (
        None
        if isinstance(c, type) and issubclass(c, TargetModule) and hasattr(c, "Settings")
        else "a target regime must be a TargetModule subclass with a Settings dataclass"
    ),
)

__all__ = [
    "build_target",
    "parse_target_entry",
    "target_names",
    "eval_eps",
    "settings_of",
    "TARGETS",
    "TargetSettings",
    "PGDSettings",
    "TradesSettings",
    "DistSettings",
    "TargetModule",
    "NaturalTarget",
    "PGDTarget",
    "TradesTarget",
    "DistTarget",
]


def build_target(cfg, net, train_idx=None) -> TargetModule:
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


def settings_of(cls: type[TargetModule], section) -> TargetSettings:
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
