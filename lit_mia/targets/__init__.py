"""Training regimes as LightningModules, by name (`target.name`).

Adding a regime: its module here, one registry line, conf/target/<name>.yaml, its test.
"""

from __future__ import annotations

from lit_mia.targets.adversarial import PGDTarget
from lit_mia.targets.base import TargetModule
from lit_mia.targets.natural import NaturalTarget

TARGETS: dict[str, type[TargetModule]] = {
    "natural": NaturalTarget,
    "pgd": PGDTarget,
}

__all__ = ["build_target", "eval_eps", "TARGETS", "TargetModule", "NaturalTarget", "PGDTarget"]


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
    )
    if cls.adversarial:
        kwargs.update(
            eps=t.eps,
            steps=t.steps,
            step_size=t.step_size,
            random_start=t.random_start,
            ratio=t.ratio,
            ratio_mode=t.ratio_mode,
        )
    return cls(net, **kwargs)


def eval_eps(cfg) -> float:
    """The eps of the final `target/adv_*_acc`: the training eps, or attack.eps if natural."""
    t = cfg.target
    return float(t.eps) if TARGETS[t.name].adversarial and t.eps > 0 else float(cfg.attack.eps)
