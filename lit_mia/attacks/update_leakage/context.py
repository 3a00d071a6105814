"""What every Updates-Leak attack reads (Salem et al. USENIX Security'20): `UpdatesContext`
with the settings, the data, the pools, one farm per update-set size, and a logger factory;
helpers shared by the runners (fitting, features, baselines' image statistics, results)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.update_leakage.representation import features
from lit_mia.fitting import fit_module
from lit_mia.metrics import keys
from lit_mia.models.update_farm import FarmData
from lit_mia.models.update_pools import UpdatePools


def attack_k(u, name: str) -> int:
    """Update-set size of attack `name`: lde.k for a_lde when set, else updates.k."""
    if name == "a_lde" and u.lde.k is not None:
        return int(u.lde.k)
    return int(u.k)


@dataclass
class UpdatesContext:
    u: Any  # the `updates` settings
    bundle: Any  # DatasetBundle
    pools: UpdatePools
    farms: dict[int, FarmData]  # update-set size -> farm
    seed: int = 0
    deterministic: bool | str = True
    logger: Callable[[str], Any] = lambda name: None

    @property
    def n_classes(self) -> int:
        return int(self.bundle.n_classes)

    def farm(self, name: str) -> FarmData:
        return self.farms[attack_k(self.u, name)]

    def features(self, farm: FarmData, n_probe: int | None = None) -> tuple[Tensor, Tensor]:
        """(shadow, target) decoder inputs in updates.representation; stats from the shadow."""
        rep = str(self.u.representation)
        sh, tg = farm.shadow, farm.target
        return features(rep, sh, sh, n_probe), features(rep, tg, sh, n_probe)

    def images(self, idx: Tensor) -> Tensor:
        """bundle images of idx (any shape) in [-1, 1], shape idx.shape + (C, H, W)."""
        return self.bundle.x[idx] * 2 - 1

    def rng(self, tag: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, 100 + tag))

    def adversary(self) -> tuple[Tensor, np.ndarray, Tensor, Tensor]:
        """The adversary's own data (shadow base + shadow pool): indices, labels, the mean
        image and the per-class mean images [C, ...] (a class it lacks: the overall mean)."""
        adv = torch.as_tensor(self.pools.adversary)
        y = self.bundle.y[adv].numpy()
        x = self.bundle.x[adv]
        mean = x.mean(0)
        cm = [x[torch.as_tensor(y == c)].mean(0) if (y == c).any() else mean
              for c in range(self.n_classes)]  # fmt: skip
        return adv, y, mean, torch.stack(cm)


def holdout(base_of: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """(train, validation) positions of shadow updates: validation = the updates of the last
    shadow base model when there are several (a base the decoder does not train on, as the
    target's), else a random val_fraction of them (default_rng((seed, 99)))."""
    base_of = torch.as_tensor(base_of)
    if int(base_of.max()) >= 1:
        last = base_of == base_of.max()
        return torch.nonzero(~last).flatten(), torch.nonzero(last).flatten()
    m = len(base_of)
    perm = torch.as_tensor(np.random.default_rng((seed, 99)).permutation(m))
    n_val = min(max(1, round(m * float(val_fraction))), m - 1)
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def fit_attack_model(
    ctx: UpdatesContext, name: str, module, tensors, epochs: int, batch_size: int,
    base_of: Tensor | None = None,
):  # fmt: skip
    """Fit an attack model on shadow tensors; returns (the fitted module, its selection facts).

    With `base_of` (the shadow updates' base models) and updates.early_stopping: train on all
    but the held-out updates (holdout) and keep the epoch with the lowest held-out loss; the
    facts are that choice, `updates/<name>/best_epoch`, `.../best_val` and `.../n_val` (empty
    without a held-out set). Attacks return them in `AttackResult.facts`."""
    val = None
    if base_of is not None and bool(ctx.u.early_stopping) and len(base_of) >= 2:
        tr, va = holdout(base_of, float(ctx.u.val_fraction), ctx.seed)
        tensors, val = tuple(t[tr] for t in tensors), tuple(t[va] for t in tensors)
    out = fit_module(
        module,
        tensors,
        epochs=int(epochs),
        batch_size=int(batch_size),
        seed=ctx.seed,
        logger=ctx.logger(name),
        deterministic=ctx.deterministic,
        val=val,
    )
    facts = {}
    if val is not None:
        facts[keys.updates(f"{name}/best_epoch")] = float(out.best_epoch)
        facts[keys.updates(f"{name}/best_val")] = float(out.best_val)
        facts[keys.updates(f"{name}/n_val")] = float(len(val[0]))
    return out, facts


def finish(name: str, metrics: dict[str, float], figures=None, facts=None) -> AttackResult:
    """The AttackResult of update-leakage attack `name` (metrics also as a JSON artifact);
    facts: full-key metrics outside attack/<name>/ (fit_attack_model's selection)."""
    metrics = {k: float(v) for k, v in metrics.items()}
    texts = {f"updates/{name}_metrics.json": json.dumps(metrics, indent=2, sort_keys=True)}
    return AttackResult(metrics, figures=figures or {}, texts=texts, facts=dict(facts or {}))


__all__ = ["UpdatesContext", "attack_k", "finish", "fit_attack_model", "holdout"]
