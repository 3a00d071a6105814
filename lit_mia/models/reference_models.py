"""The reference (shadow) models that LiRA and RMIA share, and their outputs.

One farm per target run: model i trains like the target on the pool points where row i of the
balanced keep matrix is True (complementary pairs, every pool point IN for half of the models;
Carlini et al. S&P 2022 §IV), with seed `shadow_seed(seed, i)`, through the vmap/loop farm
(models/shadow_farm.py) when it reproduces the target's regime, else the Lightning fit. Models
are cached on disk (`attack.lira.cache_dir`, models/cache.py) and, within a run, kept in
`ctx.shared` (`reference_farm`): LiRA, RMIA and the reference-budget curve ask for the first n
models and the farm trains only those not yet held (rows of the keep matrix do not depend on n,
so the first n models of a 64-model farm are the 16-model farm's).

Training: through models/backends.py (`farm.backend`: local, or one Ray task per group of
models on a cluster), at most `TRAIN_CHUNK` models at once on the local backend; the run keeps
only each model's state dict
(no optimiser state). Outputs: `farm_logits` streams the logits of every model on the
requested points and queries, a few models at a time (`MODELS_PER_CHUNK`), into a
memory-mapped float32 array on disk [n_models, n_points, n_queries, K]; only one chunk of
models' stacked parameters and logits is in memory at once, so memory stays flat in the number
of reference models (bench/bench_rmia.py measures it). Attacks read the array (numpy memmap;
slicing reads from disk).

The farm settings are LiRA's (`attack.lira.farm`, `epochs`, `cache_dir`, `augment`).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

if TYPE_CHECKING:  # the attack side passes its context; models/ imports no attack code
    from lit_mia.attacks.context import AttackContext

from lit_mia.errors import unknown_name
from lit_mia.models.backends import PLACEMENTS_KEY, Population, train_population
from lit_mia.models.cache import ModelCache, canonical
from lit_mia.models.farm_settings import farm_of
from lit_mia.models.shadow_farm import (
    FARM_VERSION,
    TrainSpec,
    ensemble_predict,
    stack_state_dicts,
    train_farm,
)
from lit_mia.models.shadow_farm import REGIMES as FARM_REGIMES
from lit_mia.perturb.transforms import translate
from lit_mia.targets import TARGETS
from lit_mia.training import subset

AUGMENTS = ("none", "flip", "shift", "flip_shift")
CACHE_KIND = "lira_shadow"
SHARED_KEY = "reference_farm"
MODELS_PER_CHUNK = 8
"""Models whose parameters and logits are in memory at once while `farm_logits` streams."""
TRAIN_CHUNK = 32
"""Most models the farm trains at once (their optimiser states and activations); a farm of
64 trains in two rounds, one of 16 in one (as before this limit)."""


# --------------------------------------------------------------------------- pool and models
def keep_matrix(n_models: int, pool_size: int, seed: int) -> np.ndarray:
    """[n_models, pool_size] bool, True = the pool point is in that model's training set.

    Complementary pairs: model 2k takes a random half (floor(pool/2) points) of the pool from
    default_rng((seed, k)), model 2k+1 the other half (with an odd pool one point is left out
    of both). Every point is IN for exactly n_models/2 models (n_models even) and every model
    holds floor(pool/2) points. Rows of pair k do not depend on n_models, so adding models
    keeps the earlier ones (and their cache entries).
    """
    keep = np.zeros((n_models, pool_size), dtype=bool)
    half = pool_size // 2
    for i in range(0, n_models, 2):
        perm = np.random.default_rng((int(seed), i // 2)).permutation(pool_size)
        keep[i, perm[:half]] = True
        if i + 1 < n_models:
            keep[i + 1, perm[half : 2 * half]] = True
    return keep


def query_views(x: Tensor, augment: str) -> list[Tensor]:
    """The query inputs of x [N, C, H, W] for `augment` (identity first): none (1), flip (2:
    identity, horizontal flip), shift (9: shifts by (dy, dx) in {-s, 0, s}^2, zero fill,
    s = max(1, H // 16)), flip_shift (18: both flips x 9 shifts)."""
    if augment not in AUGMENTS:
        raise unknown_name("attack.lira.augment", augment, AUGMENTS)
    bases = [x] if augment in ("none", "shift") else [x, x.flip(-1)]
    if augment in ("none", "flip"):
        return bases
    s = max(1, x.shape[-2] // 16)
    views = []
    for b in bases:
        for dy in (0, -s, s):
            for dx in (0, -s, s):
                views.append(b if dy == dx == 0 else translate(b, dy, dx))
    return views


def lira_pool(ctx: AttackContext) -> tuple[np.ndarray, int]:
    """(pool dataset indices, n_eval_points): evaluation members, evaluation non-members, then
    the first points of split.shadow so the pool holds 2 * m, m = the target's member count
    (or all of them if fewer); the evaluation points are always the first 2n entries."""
    ev = np.r_[ctx.eval_idx["members"], ctx.eval_idx["nonmembers"]].astype(np.int64)
    extra = np.asarray(ctx.split.shadow, dtype=np.int64)
    m = min(len(ctx.split.members), (len(ev) + len(extra)) // 2)
    need = max(0, 2 * m - len(ev))
    return np.r_[ev, extra[:need]], len(ev)


def shadow_seed(seed: int, i: int) -> int:
    """Seed of LiRA shadow model i (init and batch order), independent of other attacks'."""
    return int(np.random.SeedSequence([int(seed), 0x11A, int(i)]).generate_state(1)[0])


FARM_KNOBS = (
    "name",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "eps",
    "steps",
    "step_size",
    "random_start",
)
"""`target` knobs the farm's TrainSpec reproduces (natural and pgd; the temperature is applied
to the shadows' logits at prediction time, as to the target's)."""
PREDICTION_ONLY = ("temperature",)


def farm_spec(cfg: DictConfig, epochs: int) -> TrainSpec | None:
    """The farm's TrainSpec for this target, or None when only the Lightning fit reproduces its
    training. The farm implements the regimes of shadow_farm.REGIMES; any other knob of the
    regime's settings (countermeasures, mixed-PGD ratio, new knobs of a new regime) must sit at
    its default, and training augmentation must be off. Anything else trains the shadows
    through `ctx.fit`, exactly like the target, so a new knob can never be silently ignored."""
    t = cfg.target
    if t.name not in FARM_REGIMES or cfg.data.augment != "none":
        return None
    defaults = TARGETS[t.name].Settings()
    for key, value in t.items():
        if key in FARM_KNOBS or key in PREDICTION_ONLY:
            continue
        if value != getattr(defaults, key):
            return None
    pgd = t.name == "pgd"
    return TrainSpec(
        regime=str(t.name),
        optimizer=str(t.optimizer),
        lr=float(t.lr),
        momentum=float(t.momentum),
        weight_decay=float(t.weight_decay),
        batch_size=int(cfg.data.batch_size),
        epochs=int(epochs),
        eps=float(t.eps) if pgd else 0.0,
        steps=int(t.steps) if pgd else 0,
        step_size=float(t.step_size) if pgd else 0.0,
        random_start=bool(t.random_start) if pgd else False,
    )


def farm_device(cfg: DictConfig) -> torch.device:
    """The device the farm trains on (`trainer.accelerator`, cuda where there is one)."""
    return accelerator_device(str(cfg.trainer.accelerator))


def accelerator_device(acc: str) -> torch.device:
    """cuda for gpu / cuda / auto where this process sees a GPU, else cpu."""
    if acc in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _data_digest(ctx: AttackContext) -> dict:
    return canonical({"x": ctx.bundle.x, "y": ctx.bundle.y})


def shadow_fields(cfg, data_digest, train_idx, seed, i, epochs, path, spec) -> dict:
    """Everything that determines LiRA shadow model i (its cache key, lit_mia/cache.py)."""
    trainer = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer["max_epochs"] = int(epochs)
    return {
        "kind": CACHE_KIND,
        "path": path,  # farm | lightning: different training procedures
        "farm_version": FARM_VERSION if path == "farm" else None,
        "spec": spec.fields() if spec is not None else None,
        "trainer": trainer if path == "lightning" else None,
        "dataset": str(cfg.data.name),
        "data": data_digest,
        "batch_size": int(cfg.data.batch_size),
        "augment": str(cfg.data.augment),
        "net": OmegaConf.to_container(cfg.net, resolve=True),
        "target": OmegaConf.to_container(cfg.target, resolve=True),
        "train_idx": np.asarray(train_idx, dtype=np.int64),
        "seed": int(seed),
        "index": int(i),
        "epochs": int(epochs),
    }


def shadow_states(
    ctx: AttackContext, pool: np.ndarray, keep: np.ndarray, known: list | None = None
) -> tuple[list, dict]:
    """State dicts of the raw nets of the N shadow models (`known[i]` for the first ones
    already held, the rest cached or trained now through models/backends.py on `farm.backend`)
    and stats of the new ones."""
    cfg, lc = ctx.cfg, ctx.cfg.attack.lira
    epochs = int(lc.epochs) if lc.epochs is not None else int(cfg.trainer.max_epochs)
    spec = farm_spec(cfg, epochs)
    path = "farm" if spec is not None else "lightning"
    cache = ModelCache(lc.cache_dir, CACHE_KIND) if str(lc.cache_dir) else None
    digest = _data_digest(ctx)
    n = keep.shape[0]
    known = list(known or [])[:n]
    first = len(known)
    sets = [np.sort(pool[keep[i]]) for i in range(first, n)]
    seeds = [shadow_seed(int(cfg.seed), i) for i in range(first, n)]
    fields = [
        shadow_fields(cfg, digest, sets[j], seeds[j], first + j, epochs, path, spec)
        for j in range(n - first)
    ]
    shared = {
        "sets": sets, "seeds": seeds, "spec": spec, "epochs": epochs,
        "accelerator": str(cfg.trainer.accelerator),
        "farm": str(lc.farm), "choices": ctx.shared.setdefault("farm_choices", {}),
        "make_net": ctx.make_net if spec is not None else None,
        "x": ctx.bundle.x if spec is not None else None,
        "y": ctx.bundle.y if spec is not None else None,
        "fit": ctx.fit if spec is None else None,
    }  # fmt: skip
    pop = Population("reference model", fields, train_references, shared, TRAIN_CHUNK, first)
    placements = ctx.shared.setdefault(PLACEMENTS_KEY, [])
    before = len(placements)
    t0 = time.perf_counter()
    new = train_population(pop, farm_of(cfg), cache, placements)
    trained = placements[before:]
    stats = {"cached": n - first - len(trained), "trained": len(trained), "seconds": 0.0,
             "path": path}  # fmt: skip
    if trained:
        stats["seconds"] = time.perf_counter() - t0
        notes = sorted({p.note for p in trained if p.note})
        if spec is not None and notes:
            stats["path"] = "farm/" + "+".join(notes)
    states = known + [{k: v.detach().cpu() for k, v in s.items()} for s in new]
    return states, stats


def train_references(shared: dict, group: list[int]) -> tuple[list[dict], str]:
    """Models `group` of a reference population (backends.Population.train): through the
    shadow farm (one vmap/loop batch for the whole group) when `shared["spec"]` reproduces the
    target's regime, else one Lightning fit each; state dicts on the CPU."""
    s = shared
    if s["spec"] is None:
        states = [s["fit"](s["sets"][i], s["seeds"][i], s["epochs"]).net.state_dict()
                  for i in group]  # fmt: skip
        return [{k: v.detach().cpu() for k, v in st.items()} for st in states], "lightning"
    device = accelerator_device(s["accelerator"])
    farm = train_farm(
        s["make_net"],
        s["x"].to(device),
        s["y"].to(device),
        [s["sets"][i] for i in group],
        [s["seeds"][i] for i in group],
        s["spec"],
        farm=s["farm"],
        choices=s["choices"],  # one run, one decision (per process on the ray backend)
    )
    return [farm.state_dict(j) for j in range(len(group))], farm.path


def target_logits(ctx: AttackContext, x: Tensor) -> Tensor:
    """Target logits (its forward: prediction-time temperature included) on x, CPU."""
    bs, dev = int(ctx.cfg.attack.batch_size), ctx.pred.device
    model = ctx.target.eval()
    with torch.no_grad():
        return torch.cat([model(x[i : i + bs].to(dev)).cpu() for i in range(0, len(x), bs)])


def target_view_logits(ctx: AttackContext, idx: np.ndarray, augment: str) -> Tensor:
    """Target logits [len(idx), Q, K] on the dataset points idx under the `augment` queries."""
    x, _ = subset(ctx.bundle, np.asarray(idx, dtype=np.int64))
    return torch.stack([target_logits(ctx, v) for v in query_views(x, augment)], 1)


# --------------------------------------------------------------------------- the shared farm
@dataclass
class ReferenceFarm:
    """The run's reference models: `pool` (dataset indices; the evaluation points are its first
    `n_ev`), `states` (state dicts of models 0..len-1), `stats` (cached / trained counts and
    training seconds, summed over this run), `logits` (memmaps by request, see farm_logits)."""

    pool: np.ndarray
    n_ev: int
    states: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    logits: dict = field(default_factory=dict)
    tmp: tempfile.TemporaryDirectory | None = None

    def keep(self, n: int, seed: int) -> np.ndarray:
        """[n, pool] membership of the pool points in models 0..n-1 (keep_matrix)."""
        return keep_matrix(n, len(self.pool), seed)


def reference_farm(ctx: AttackContext, n: int) -> ReferenceFarm:
    """The run's farm with at least n models (trained or loaded once, shared by attacks)."""
    farm = ctx.shared.get(SHARED_KEY)
    if farm is None:
        pool, n_ev = lira_pool(ctx)
        farm = ReferenceFarm(pool, n_ev, stats={"cached": 0, "trained": 0, "seconds": 0.0})
        ctx.shared[SHARED_KEY] = farm
    if len(farm.states) < n:
        keep = farm.keep(n, int(ctx.cfg.seed))
        states, st = shadow_states(ctx, farm.pool, keep, known=farm.states)
        farm.states = states
        for k in ("cached", "trained", "seconds"):
            farm.stats[k] += st[k]
        farm.stats["path"] = st["path"]
    return farm


def farm_logits(ctx: AttackContext, n: int, idx: np.ndarray, augment: str) -> np.ndarray:
    """Logits [n, len(idx), Q, K] (float32 memmap, read-only) of models 0..n-1 on the dataset
    points `idx` under the `augment` queries (query_views), divided by the target's
    prediction-time temperature. Computed once per (n, points, augment) and run; models are
    stacked `MODELS_PER_CHUNK` at a time and each chunk's logits written straight to disk."""
    farm = reference_farm(ctx, n)
    idx = np.asarray(idx, dtype=np.int64)
    key = (n, augment, hashlib.sha1(idx.tobytes()).hexdigest())
    if key in farm.logits:
        return farm.logits[key]
    if farm.tmp is None:
        farm.tmp = tempfile.TemporaryDirectory(prefix="lit_mia_refs_")
    x, _ = subset(ctx.bundle, idx)
    views = query_views(x, augment)
    temp = float(ctx.cfg.target.temperature)
    with torch.random.fork_rng(devices=[]):  # leave the global RNG to the other attacks
        template = ctx.make_net()
    device = farm_device(ctx.cfg)
    bs = int(ctx.cfg.attack.batch_size)
    out = None
    for lo in range(0, n, MODELS_PER_CHUNK):
        hi = min(n, lo + MODELS_PER_CHUNK)
        params, buffers = stack_state_dicts(template, farm.states[lo:hi], device)
        for q, v in enumerate(views):
            lg = (ensemble_predict(template, params, buffers, v, bs) / temp).float().numpy()
            if out is None:
                k = lg.shape[-1]
                path = Path(farm.tmp.name) / f"logits_{len(farm.logits)}.f32"
                out = np.lib.format.open_memmap(
                    path, mode="w+", dtype=np.float32, shape=(n, len(idx), len(views), k)
                )
            out[lo:hi, :, q, :] = lg
        del params, buffers
    out.flush()
    ro = np.load(out.filename, mmap_mode="r")
    del out
    farm.logits[key] = ro
    return ro


__all__ = [
    "AUGMENTS",
    "CACHE_KIND",
    "FARM_KNOBS",
    "MODELS_PER_CHUNK",
    "PREDICTION_ONLY",
    "ReferenceFarm",
    "accelerator_device",
    "farm_device",
    "farm_logits",
    "farm_spec",
    "keep_matrix",
    "lira_pool",
    "query_views",
    "reference_farm",
    "shadow_fields",
    "shadow_seed",
    "shadow_states",
    "target_logits",
    "target_view_logits",
    "train_references",
]
