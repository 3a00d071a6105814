"""The attack-side view of one trained target (`AttackContext`) and its shadow models.

Shadow models are trained once per target run, lazily, and shared by every attack of the run
(calibrated thresholds, the shadow-model attack, label-only calibration): shadow model i is
trained with the target's own regime, net, epochs and config on `shadow_split(split, i)`'s "in"
set, which holds exactly as many points as the target's members (issue 12: a calibration
shadow trained on a different set size overfits differently and mis-calibrates the
thresholds), with seed `cfg.seed + 1 + i`. Model 0 uses a fixed part of the pool, so
`acc_calibrated` does not depend on how many shadow models other attacks ask for.
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
from lit_mia.errors import ConfigError
from lit_mia.models.backends import PLACEMENTS_KEY, Population, fit_each, train_population
from lit_mia.models.farm_settings import farm_of
from lit_mia.predictor import Predictor


@dataclass
class ShadowModel:
    """A model trained like the target on `in_idx` (as many points as the target's members);
    `out_idx` is held out (as many as the target's evaluation non-members, at most that)."""

    module: torch.nn.Module
    in_idx: np.ndarray
    out_idx: np.ndarray
    predictor: Predictor


def shadow_sizes(split: MembershipSplit) -> tuple[int, int]:
    """(in, out) sizes of every shadow model: trained on exactly as many points as the target
    (its members), held out as many as the target's non-members (at most the members)."""
    n_in = len(split.members)
    return n_in, min(n_in, len(split.nonmembers))


def check_shadow_pool(split: MembershipSplit, n_models: int) -> None:
    """ConfigError unless the shadow pool can hold one shadow model's in + out sets
    (calibration shadows train like the target, on as many points:
    docs/explanation/measurement.md)."""
    if n_models <= 0:
        return
    n_in, n_out = shadow_sizes(split)
    if len(split.shadow) < n_in + n_out:
        raise ConfigError(
            f"data.n_shadow={len(split.shadow)} is too small for shadow models trained like the "
            f"target: each needs data.n_members={n_in} training points plus {n_out} held out "
            f"(min of data.n_members and data.n_nonmembers); set data.n_shadow >= {n_in + n_out}"
        )


def shadow_split(split: MembershipSplit, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(in, out) index sets of shadow model i, disjoint, drawn from the shadow pool only:
    `shadow_sizes` points each (in = the target's member count).

    i = 0: the first n_in pool indices and the next n_out (fixed, so `acc_calibrated` does not
    depend on how many shadow models other attacks ask for); i >= 1: a random draw from
    default_rng((split.seed, i)).
    """
    check_shadow_pool(split, 1)
    n_in, n_out = shadow_sizes(split)
    pool = np.asarray(split.shadow)
    if i == 0:  # pool order (as before issue 12: same model where the sizes did not change)
        return pool[:n_in], pool[n_in : n_in + n_out]
    pool = pool[np.random.default_rng((split.seed, i)).permutation(pool.size)]
    return np.sort(pool[:n_in]), np.sort(pool[n_in : n_in + n_out])


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
        cls,
        cfg: DictConfig,
        bundle: DatasetBundle,
        split: MembershipSplit,
        target,
        fit: Callable[..., torch.nn.Module] | None = None,
        make_net: Callable[[], torch.nn.Module] | None = None,
    ) -> AttackContext:
        """The context of a target trained on `split.members`: evaluation sets of
        `attack.n_eval` members and as many non-members; shadow models fitted on demand by
        `fit` (default: `training.fit_target` like the target, no validation set) from `make_net`
        (default: the configured net). lit_mia.audit passes the user's recipe and net."""
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
            fit=fit
            or (
                lambda idx, seed, epochs=None: training.fit_target(
                    training.with_epochs(cfg, epochs), bundle, idx, None, seed=seed
                )
            ),
            make_net=make_net or (lambda: training.make_net(cfg, bundle)),
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
        first = len(self._shadows)
        if first < n:  # models/backends.py: local, or one Ray task per model (farm.backend)
            shared = {
                "fit": self.fit,
                "sets": [shadow_split(self.split, i)[0] for i in range(first, n)],
                "seeds": [int(self.cfg.seed) + 1 + i for i in range(first, n)],
            }
            pop = Population("calibration shadow model", [None] * (n - first), fit_each,
                             shared, chunk=1, first=first)  # fmt: skip
            placements = self.shared.setdefault(PLACEMENTS_KEY, [])
            for module in train_population(pop, farm_of(self.cfg), None, placements):
                self.add_shadow(module)
        return self._shadows[:n]

    def add_shadow(self, module: torch.nn.Module) -> None:
        """Register the next shadow model (trained elsewhere on `shadow_split(split, i)`)."""
        s_in, s_out = shadow_split(self.split, len(self._shadows))
        a = self.cfg.attack
        pred = Predictor(
            module, training.eval_sets(self.bundle, s_in, s_out, a.n_eval), a.batch_size
        )
        self._shadows.append(ShadowModel(module, s_in, s_out, pred))


__all__ = ["AttackContext", "ShadowModel", "check_shadow_pool", "shadow_sizes", "shadow_split"]
