"""Both sides of the Updates-Leak farm (Salem et al. USENIX Security'20, §3.4), cached.

Shadow side: `n_shadow_bases` base models, all trained on the adversary's shadow base set with
different seeds (seed + 1, + 3, + 5, ...); shadow update set i starts from base i mod
n_shadow_bases, so the decoders learn what transfers to an unseen base model rather than one
model's quirks (issue 11: A_SSR on the target base, 2,400 shadow updates: one shadow base
0.056 MSE = the class mean, five bases 0.0485; the shipped ablation 0.067 vs 0.050). Target
side: one base model (seed + 2) trained
on the target base set. Update sets: pools.sample_update_sets (without replacement until a
pool is used up, disjoint sides).

Every side stores float64 log-posterior differences log p_updated - log p_base [m, n_probe * C]
(`probe_mode` delta, the default: the update step in float64, the base forward once in float64
and each model's activation differences in float32, delta_forward.py; `loop` / `vmap` with
`farm_dtype` float64: the update and the whole probe forward in float64), the
base models' log-posteriors [n_bases, n_probe, C] and which base each update started from:
every representation of representation.py derives from these.

`build_farm` is cached with lit_mia.models.cache.ModelCache, keyed by every field that determines it
(data set, index pools, net, base regime, trainer, farm settings, set size k, seed).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lit_mia.metrics import keys as metric_keys
from lit_mia.models.backends import Population, train_population
from lit_mia.models.farm_settings import FarmSettings
from lit_mia.models.update_choices import FARM_DTYPES
from lit_mia.models.update_deltas import UpdateRule, accuracy, update_deltas
from lit_mia.models.update_pools import UpdatePools, sample_update_sets, set_usage

FARM_FORMAT = 2
"""Version of the farm's generated data; bump it when the generation changes."""

DTYPES = {name: getattr(torch, name) for name in FARM_DTYPES}


@dataclass
class FarmSide:
    """One side: log-posterior differences [m, n_probe * C] (float64), update-set indices and
    labels [m, k], base index of each update [m], base log-posteriors [n_bases, n_probe, C],
    and the mean accuracy of the side's base models on the other side's base set."""

    deltas: Tensor
    sets: Tensor
    labels: Tensor
    base_acc: float
    base_of: Tensor
    base_logp: Tensor


@dataclass
class FarmData:
    shadow: FarmSide
    target: FarmSide
    cache_hit: bool
    seconds: float
    k: int = 1


class BaseModels:
    """The shadow and target base models, each trained on first use (once per experiment):
    shadow base j on the shadow base set with seed + 1 + 2j, the target base on the target
    base set with seed + 2. With `cache` and `fields` (everything but the seed that determines
    a base model) each net's state_dict is cached, so the experiments share their bases.
    The missing ones train together through models/backends.py (`farm`: the `farm` settings,
    local by default; one Ray task per base model on the ray backend); `placements` lists
    where each was trained."""

    def __init__(self, fit_base: Callable[[np.ndarray, int], nn.Module], pools, seed: int,
                 cache=None, fields: dict | None = None, farm=None):  # fmt: skip
        self.fit_base, self.pools, self.seed = fit_base, pools, int(seed)
        self.cache, self.fields = cache, fields
        self.farm = farm if farm is not None else FarmSettings()
        self.shadow: list[nn.Module] = []
        self._target: nn.Module | None = None
        self.placements: list = []

    def _key(self, idx: np.ndarray, seed: int) -> dict | None:
        if self.cache is None:
            return None
        return {**(self.fields or {}), "base_seed": seed, "train_idx": np.asarray(idx)}

    def _fit_all(self, jobs: list[tuple[np.ndarray, int]]) -> list[nn.Module]:
        """Base nets for (train indices, seed) jobs: cached, or trained now."""
        cached = self.cache is not None
        shared = {"fit_base": self.fit_base, "jobs": jobs, "state_dicts": cached}
        pop = Population("update base model", [self._key(i, s) for i, s in jobs], fit_bases,
                         shared, chunk=1)  # fmt: skip
        out = train_population(pop, self.farm, self.cache, self.placements)
        if not cached:
            return out
        nets = []
        for (idx, seed), state in zip(jobs, out, strict=True):
            net = self.fit_base(idx[:0], seed, train=False)
            net.load_state_dict(state)
            nets.append(net.eval())
        return nets

    def get(self, n_shadow: int) -> tuple[list[nn.Module], nn.Module]:
        first = len(self.shadow)
        jobs = [(self.pools.shadow_base, self.seed + 1 + 2 * j) for j in range(first, n_shadow)]
        if self._target is None:
            jobs.append((self.pools.target_base, self.seed + 2))
        if jobs:
            nets = self._fit_all(jobs)
            if self._target is None:
                self._target = nets.pop()
            self.shadow.extend(nets)
        return self.shadow[:n_shadow], self._target


def fit_bases(shared: dict, group: list[int]) -> list:
    """`Population.train` of base models: fit_base(idx, seed) per job of the group, as state
    dicts (CPU) when they are cached, else the nets."""
    out = []
    for i in group:
        idx, seed = shared["jobs"][i]
        net = shared["fit_base"](idx, seed)
        out.append({k: v.detach().cpu() for k, v in net.state_dict().items()}
                   if shared["state_dicts"] else net)  # fmt: skip
    return out


def subset(side: FarmSide, idx) -> FarmSide:
    """The updates idx of a side (same base models)."""
    idx = torch.as_tensor(idx)
    return FarmSide(
        side.deltas[idx], side.sets[idx], side.labels[idx], side.base_acc, side.base_of[idx],
        side.base_logp,
    )  # fmt: skip


def farm_fields(cfg, bundle_name: str, n_total: int, pools: UpdatePools, k: int) -> dict:
    """Everything that determines the generated data (the cache key)."""
    u = cfg.updates
    names = (
        "m_shadow", "m_target", "n_probe", "base_size", "base_epochs", "base_batch_size",
        "shadow_pool", "target_pool", "label_dirichlet", "update_optimizer", "update_lr",
        "update_momentum", "update_batch_size", "probe_mode", "n_shadow_bases", "farm_dtype",
    )  # fmt: skip
    t = cfg.trainer
    return {
        "format": FARM_FORMAT,
        "dataset": bundle_name,
        "n_total": int(n_total),
        "pools": {b: np.asarray(v) for b, v in pools.to_dict().items()},
        "net": cfg.net,
        "target": cfg.target,
        "trainer": {x: t[x] for x in ("accelerator", "precision", "deterministic", "devices")},
        "updates": {x: u[x] for x in names},
        "k": int(k),
        "seed": int(cfg.seed),
        "torch": torch.__version__.split("+")[0],
    }


_KEYS = ("deltas", "sets", "labels", "base_of", "base_logp")


def build_farm(cfg, bundle, pools: UpdatePools, bases: BaseModels, k: int, cache=None):
    """Both sides' deltas for update sets of size k (from the cache when an entry for exactly
    these fields exists). Update sets from default_rng((seed, side, k))."""
    fields = farm_fields(cfg, bundle.name, len(bundle), pools, k)
    if cache is not None:
        hit = cache.load(fields)
        if hit is not None:
            sides = {
                s: FarmSide(
                    **{x: hit[f"{s}_{x}"] for x in _KEYS},
                    base_acc=float(hit[f"{s}_base_acc"]),
                )
                for s in ("shadow", "target")
            }
            return FarmData(sides["shadow"], sides["target"], True, 0.0, int(k))
    u = cfg.updates
    rule = UpdateRule.from_settings(u)
    dtype = DTYPES[str(u.farm_dtype)]
    probe = bundle.x[torch.as_tensor(pools.probe)]
    y_all = bundle.y.numpy()
    shadow_nets, target_net = bases.get(int(u.n_shadow_bases))
    sides, t_farm = {}, 0.0
    spec = {
        "shadow": (shadow_nets, pools.shadow_pool, int(u.m_shadow), 1, pools.target_base),
        "target": ([target_net], pools.target_pool, int(u.m_target), 2, pools.shadow_base),
    }
    for side, (nets, pool, m, offset, other) in spec.items():
        rng = np.random.default_rng((int(cfg.seed), offset, int(k)))
        sets = sample_update_sets(pool, y_all[pool], m, int(k), rng, float(u.label_dirichlet))
        st = torch.as_tensor(sets)
        base_of = torch.arange(m) % len(nets)
        deltas = torch.empty(m, len(probe) * bundle.n_classes, dtype=torch.float64)
        base_logp = []
        t0 = time.perf_counter()
        for j, net in enumerate(nets):
            sel = base_of == j
            xs, ys = bundle.x[st[sel]], bundle.y[st[sel]]
            d = update_deltas(
                net, probe, xs, ys, rule, int(u.chunk), str(u.probe_mode), dtype, True
            )
            deltas[sel] = d.double()
            with torch.no_grad():
                hi = copy.deepcopy(net).to(dtype).eval()
                base_logp.append(torch.log_softmax(hi(probe.to(dtype)), -1).double())
        t_farm += time.perf_counter() - t0
        oi = torch.as_tensor(other)
        acc = float(np.mean([accuracy(n, bundle.x[oi], bundle.y[oi]) for n in nets]))
        sides[side] = FarmSide(deltas, st, bundle.y[st], acc, base_of, torch.stack(base_logp))
    if cache is not None:
        tensors = {}
        for s, d in sides.items():
            tensors |= {f"{s}_{x}": getattr(d, x) for x in _KEYS}
            tensors[f"{s}_base_acc"] = torch.tensor(d.base_acc)
        cache.save(fields, tensors)
    return FarmData(sides["shadow"], sides["target"], False, t_farm, int(k))


def farm_facts(farm: FarmData, pools: UpdatePools) -> dict[str, float]:
    """Honest-data checks, logged: every update sample lies in its side's pool, the sides'
    samples are disjoint from each other, the base sets and the probes; usage counts."""
    sh, tg = farm.shadow.sets.numpy(), farm.target.sets.numpy()
    if not np.isin(sh, pools.shadow_pool).all() or not np.isin(tg, pools.target_pool).all():
        raise RuntimeError("updates: an update set holds a sample outside its side's pool")
    others = np.concatenate([pools.shadow_base, pools.target_base, pools.probe])
    overlap = (
        np.intersect1d(sh, tg).size + np.intersect1d(sh, others).size
        + np.intersect1d(tg, others).size
    )  # fmt: skip
    if overlap:
        raise RuntimeError(f"updates: update sets overlap other index sets in {overlap} samples")
    out = {"overlap": float(overlap)}
    for name, s in (("shadow", sh), ("target", tg)):
        distinct, max_use = set_usage(s)
        out[f"{name}_distinct"] = float(distinct)
        out[f"{name}_max_use"] = float(max_use)
    return out


def build_farms(cfg, bundle, pools: UpdatePools, bases: BaseModels, ks, cache=None):
    """One farm per update-set size in `ks` (build_farm) and their facts as metrics
    `updates/k<k>/...`: wall time, cache hit, base accuracies, farm_facts, target delta norm
    percentiles and the share of zero deltas, models per second when generated."""
    farms, out = {}, {}
    for k in ks:
        t0 = time.perf_counter()
        farm = farms[k] = build_farm(cfg, bundle, pools, bases, k, cache)
        facts = {
            "farm_wall_s": time.perf_counter() - t0,
            "cache_hit": float(farm.cache_hit),
            "shadow_base_acc": farm.shadow.base_acc,
            "target_base_acc": farm.target.base_acc,
            **farm_facts(farm, pools),
        }
        norms = farm.target.deltas.norm(dim=1).numpy()
        for q in (10, 50, 90):
            facts[f"target_delta_norm_p{q}"] = float(np.percentile(norms, q))
        facts["target_zero_deltas"] = float((norms == 0).mean())
        if not farm.cache_hit:
            m = len(farm.shadow.deltas) + len(farm.target.deltas)
            facts["farm_models_per_s"] = m / max(farm.seconds, 1e-9)
        out |= {metric_keys.updates_farm(k, key): v for key, v in facts.items()}
    return farms, out


__all__ = ["BaseModels", "FarmData", "FarmSide", "build_farm", "build_farms", "farm_facts"]
__all__ += ["fit_bases"]
__all__ += ["farm_fields", "subset"]
