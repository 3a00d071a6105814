"""The attack-side view of one trained target (`AttackContext`) and its shadow models.

Shadow models are trained once per target run, lazily, and shared by every attack of the run
(calibrated thresholds, the shadow-model attack, label-only calibration): shadow model i is
trained with the target's own regime and config on `shadow_split(split, i)`'s "in" half, with
seed `cfg.seed + 1 + i`. Model 0 uses the split's fixed `shadow_halves()`, so `acc_calibrated`
does not depend on how many shadow models other attacks ask for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from lit_mia import training
from lit_mia.data.datasets import DatasetBundle
from lit_mia.data.splits import MembershipSplit
from lit_mia.predictor import Predictor


@dataclass
class ShadowModel:
    """A model trained like the target on `in_idx`; `out_idx` is held out (same size)."""

    module: torch.nn.Module
    in_idx: np.ndarray
    out_idx: np.ndarray
    predictor: Predictor


def shadow_split(split: MembershipSplit, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(in, out) halves of the shadow pool for shadow model i (disjoint, equal sizes).

    i = 0: `split.shadow_halves()`; i >= 1: a random half from default_rng((split.seed, i)).
    """
    if i == 0:
        return split.shadow_halves()
    pool = np.asarray(split.shadow)
    perm = np.random.default_rng((split.seed, i)).permutation(pool.size)
    half = pool.size // 2
    return np.sort(pool[perm[:half]]), np.sort(pool[perm[half : 2 * half]])


@dataclass
class AttackContext:
    """Everything an attack may read about one target run.

    cfg: resolved experiment config of this target (attack settings under `cfg.attack`).
    target: the trained target module (eval mode, on `pred.device`).
    pred: Predictor over the evaluation sets "members" / "nonmembers" (equal sizes).
    eval_idx: dataset indices of those sets ({"members": ..., "nonmembers": ...}).
    fit: train a model like the target: fit(train_idx, seed, epochs=None) -> module (eval
        mode, CPU); epochs None = the target's trainer.max_epochs.
    make_net: an untrained net of the target's architecture (for farms of shadow models).
    shared: data that several attacks of this target compute once and share, by key (e.g.
        the inference attacks' features, attacks/infer.py); dropped with the context.
    """

    cfg: DictConfig
    bundle: DatasetBundle
    split: MembershipSplit
    target: torch.nn.Module
    pred: Predictor
    eval_idx: dict[str, np.ndarray]
    fit: Callable[..., torch.nn.Module]
    make_net: Callable[[], torch.nn.Module]
    shared: dict[str, Any] = field(default_factory=dict)
    _shadows: list[ShadowModel] = field(default_factory=list)

    @classmethod
    def build(
        cls, cfg: DictConfig, bundle: DatasetBundle, split: MembershipSplit, target
    ) -> AttackContext:
        """The context of a target trained by `training.fit` on `split.members`: evaluation
        sets of `attack.n_eval` members and as many non-members, shadow models fitted the
        same way (no validation set) on demand."""
        a = cfg.attack
        sets = training.eval_sets(bundle, split.members, split.nonmembers, a.n_eval)
        n = len(sets["members"][1])
        return cls(
            cfg,
            bundle,
            split,
            target,
            Predictor(target, sets, a.batch_size),
            {"members": split.members[:n], "nonmembers": split.nonmembers[:n]},
            fit=lambda idx, seed, epochs=None: training.fit(
                training.with_epochs(cfg, epochs), bundle, idx, None, seed=seed
            ),
            make_net=lambda: training.make_net(cfg, bundle),
        )

    @property
    def shadows_trained(self) -> int:
        return len(self._shadows)

    @property
    def n_eval(self) -> int:
        return len(self.eval_idx["members"])

    def is_member(self) -> np.ndarray:
        """1 for the members' scores then 0 for the non-members' (the order attacks use)."""
        n_in, n_out = len(self.eval_idx["members"]), len(self.eval_idx["nonmembers"])
        return np.r_[np.ones(n_in, dtype=int), np.zeros(n_out, dtype=int)]

    def shadow_models(self, n: int) -> list[ShadowModel]:
        """The first n shadow models (trained on first use, then reused by every attack)."""
        while len(self._shadows) < n:
            i = len(self._shadows)
            s_in, _ = shadow_split(self.split, i)
            self.add_shadow(self.fit(s_in, int(self.cfg.seed) + 1 + i))
        return self._shadows[:n]

    def add_shadow(self, module: torch.nn.Module) -> None:
        """Register the next shadow model (trained elsewhere on `shadow_split(split, i)`)."""
        s_in, s_out = shadow_split(self.split, len(self._shadows))
        a = self.cfg.attack
        pred = Predictor(
            module, training.eval_sets(self.bundle, s_in, s_out, a.n_eval), a.batch_size
        )
        self._shadows.append(ShadowModel(module, s_in, s_out, pred))


__all__ = ["AttackContext", "ShadowModel", "shadow_split"]
