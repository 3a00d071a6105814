"""Training regimes as LightningModules, by name (`target.name`).

Adding a regime: its module here, one registry line, conf/target/<name>.yaml, its test.
"""

from __future__ import annotations

from lit_mia.targets.adversarial import PGDTarget
from lit_mia.targets.base import TargetModule
from lit_mia.targets.distributional import DistTarget
from lit_mia.targets.natural import NaturalTarget
from lit_mia.targets.regularizers import Countermeasures
from lit_mia.targets.trades import TradesTarget
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

__all__ = [
    "build_target",
    "eval_eps",
    "Countermeasures",
    "TARGETS",
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
    t = cfg.target
    cls = TARGETS[t.name]
    kwargs = dict(
        optimizer=t.optimizer,
        lr=t.lr,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
        eval_eps=eval_eps(cfg),
        val_adv_steps=cfg.trainer.val_adv_steps,
        train_idx=train_idx,
        seed=cfg.seed,
        countermeasures=Countermeasures.from_config(t),
    )
    if getattr(cls, "verifiable", False):
        kwargs["net_name"] = str(cfg.net.name)  # named in "cannot bound layer ..." errors
    return cls(net, **kwargs, **cls.regime_kwargs(t))


def eval_eps(cfg) -> float:
    """The eps of the final `target/adv_*_acc`: the training eps, or attack.eps if natural."""
    t = cfg.target
    return float(t.eps) if TARGETS[t.name].adversarial and t.eps > 0 else float(cfg.attack.eps)
