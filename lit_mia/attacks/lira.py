"""LiRA, the Likelihood Ratio Attack (Carlini, Chien, Nasr, Song, Terzis, Tramer, "Membership
Inference Attacks From First Principles", IEEE S&P 2022, §IV and Algorithm 1; REFERENCE.md §2).

Threat model: black-box access to the target's logits (prediction vectors) and the true label;
the attacker knows the training recipe (regime, architecture, optimiser, epochs) and holds a
data pool from the target's distribution that contains the candidate points (the online
setting). Steps:

1. Score: phi(x, y) = log p_y - log sum_{j != y} p_j (the logit-scaled confidence, §IV-B),
   computed stably from logits as z_y - logsumexp_{j != y} z_j (the softmax normaliser
   cancels), in float64, after the target's prediction-time temperature.
2. Shadow models: N models trained like the target (the farm, lit_mia/shadow_farm.py, or the
   Lightning fit for regimes the farm does not implement) on halves of a pool
   (`lira_pool`): the evaluation members and non-members first, then as many points of
   `split.shadow` as make the pool twice the target's member count m, so every shadow model
   trains on exactly m points, the target's training-set size ("where possible": with a
   smaller pool, half of it). The keep matrix is balanced (`keep_matrix`): models come in
   complementary pairs (a random half and its complement), so every pool point is IN for
   exactly N/2 models (N even) and OUT for the others, and every model has the same number
   of training points (which the vmap farm needs). Carlini et al.'s code draws an independent
   half per model (balanced per point by argsort, sizes varying); complementary pairs give the
   same per-point balance with equal sizes.
3. Per evaluation example, Gaussians of phi over its IN shadows (mu_in, sd_in) and OUT shadows
   (mu_out, sd_out) (`fit_gaussians`). Online score: log N(phi_t; mu_in, sd_in^2) -
   log N(phi_t; mu_out, sd_out^2) (Algorithm 1). Offline (§VI-A, OUT models only, one-sided):
   log Pr[Z <= phi_t], Z ~ N(mu_out, sd_out^2) (monotone in Algorithm 1's 1 - Pr[Z > phi_t]).
   fix_variance (§VI-A, better with fewer than ~64 shadows): one global sd_in and sd_out, the
   pooled within-example deviation (the MLE of a shared variance; the reference code's
   np.nanstd over all entries also counts the spread of the per-example means).
4. Augmentation averaging (§VI-A "augmentations", `attack.lira.augment`): phi on several
   queries of each example (identity, horizontal flip, shifts by +-s pixels, zero fill,
   s = max(1, H // 16): 1 on 28x28, 2 on 32x32 as in the reference code), one Gaussian per
   example and query, scores averaged over queries.

Metrics: the shared set of metrics.attack_metrics (AUC, TPR at FPR 1% / 0.1%, bootstrap CIs)
plus `tpr_at_fpr_0.0001`, `n_shadow`, cached/trained counts, `shadow_models_per_min` (when
any was trained), shadow train/test accuracy. No calibration shadow models: LiRA's per-example
Gaussians are its calibration.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from scipy.special import log_ndtr
from torch import Tensor

from lit_mia import metrics, plots
from lit_mia.attacks.base import Attack, AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.scoring import attack_metrics
from lit_mia.cache import ModelCache, canonical
from lit_mia.errors import ConfigError, unknown_name
from lit_mia.perturb.transforms import translate
from lit_mia.shadow_farm import (
    FARM_VERSION,
    FARMS,
    TrainSpec,
    ensemble_predict,
    stack_state_dicts,
    train_farm,
)
from lit_mia.shadow_farm import (
    REGIMES as FARM_REGIMES,
)
from lit_mia.targets import TARGETS
from lit_mia.training import label_of, subset


@dataclass
class LiraSettings:
    """`attack.lira` (Carlini et al. S&P 2022). mode: online (IN and OUT Gaussians per
    example, Algorithm 1) | offline (OUT only, §VI-A); n_shadow >= 2 (complementary pairs:
    every point IN for half): 16 on CPU (paper 64-256; fix_variance, its advice below ~64).
    augment: none | flip | shift | flip_shift (1 / 2 / 9 / 18 queries). farm: auto | vmap |
    loop (shadow_farm.py; auto times both). cache_dir: shadow models keyed by everything that
    determines them (cache.py); "" = none. epochs: None = trainer.max_epochs."""

    mode: str = "online"
    n_shadow: int = 16
    augment: str = "none"
    fix_variance: bool = True
    farm: str = "auto"
    cache_dir: str = "mlruns/cache/shadow_farm"
    epochs: int | None = None


MODES = ("online", "offline")
AUGMENTS = ("none", "flip", "shift", "flip_shift")
CACHE_KIND = "lira_shadow"
MIN_STD = 1e-6
"""Floor of every fitted standard deviation (phi is in nats; keeps scores finite)."""


# --------------------------------------------------------------------------- pure math
def phi_from_logits(logits: Tensor, y: Tensor) -> Tensor:
    """phi = log p_y - log sum_{j != y} p_j = z_y - logsumexp_{j != y} z_j, float64.

    logits [..., K]; y [...] (broadcast against logits' leading dims). Finite for finite
    logits (no softmax underflow: the difference is taken in logit space).
    """
    z = logits.double()
    yy = y.to(z.device).expand(z.shape[:-1]).unsqueeze(-1)
    zy = z.gather(-1, yy).squeeze(-1)
    others = z.scatter(-1, yy, float("-inf"))
    return zy - torch.logsumexp(others, dim=-1)


def gaussian_logpdf(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """log N(x; mu, sd^2), elementwise."""
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)


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


def _masked_stats(phi: np.ndarray, mask: np.ndarray, fix_variance: bool):
    """Per example and query: mean and sd of phi over the models where mask is True.

    phi [N, n, Q], mask [N, n]. Examples with fewer than 2 such models, or zero spread, take the
    pooled sd (as do all with fix_variance). Returns (mu [n, Q], sd [n, Q], count [n])."""
    w = mask[:, :, None].astype(np.float64)  # [N, n, 1]
    count = w.sum(0)  # [n, 1]
    if np.any(count == 0):
        raise ConfigError(
            "attack.lira.n_shadow too small: some evaluation point has no IN or no OUT shadow "
            "model (use n_shadow >= 2)"
        )
    mu = (phi * w).sum(0) / count  # [n, Q]
    sq = (((phi - mu[None]) ** 2) * w).sum(0)  # [n, Q]
    pooled = np.sqrt(sq.sum(0) / count.sum())  # [Q]: within-example deviation, shared
    pooled = np.maximum(pooled, MIN_STD)
    sd = np.sqrt(sq / count)
    if fix_variance:
        sd = np.broadcast_to(pooled, mu.shape).copy()
    else:
        bad = (count < 2) | (sd < MIN_STD)
        sd = np.where(bad, pooled[None, :], sd)
    return mu, sd, count[:, 0]


def fit_gaussians(phi: np.ndarray, keep: np.ndarray, fix_variance: bool = False) -> dict:
    """Per-example Gaussians of phi over IN and OUT shadow models.

    phi: [N models, n examples, Q queries] (or [N, n], taken as Q = 1); keep: [N, n] bool, True
    where the example was in that model's training set. Returns mu_in, sd_in, mu_out, sd_out
    ([n, Q]) and n_in, n_out ([n]). mu_in / sd_in are NaN where an example has no IN model
    (offline attacks need only the OUT side)."""
    phi = np.asarray(phi, dtype=np.float64)
    if phi.ndim == 2:
        phi = phi[:, :, None]
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != phi.shape[:2]:
        raise ConfigError(f"keep {keep.shape} must match phi's [models, examples] {phi.shape[:2]}")
    out = {}
    mu_o, sd_o, n_o = _masked_stats(phi, ~keep, fix_variance)
    out.update(mu_out=mu_o, sd_out=sd_o, n_out=n_o)
    if keep.any(0).all():
        mu_i, sd_i, n_i = _masked_stats(phi, keep, fix_variance)
    else:
        mu_i = sd_i = np.full_like(mu_o, np.nan)
        n_i = keep.sum(0).astype(np.float64)
    out.update(mu_in=mu_i, sd_in=sd_i, n_in=n_i)
    return out


def _as_nq(phi_target: np.ndarray) -> np.ndarray:
    p = np.asarray(phi_target, dtype=np.float64)
    return p[:, None] if p.ndim == 1 else p


def online_scores(phi_target: np.ndarray, g: dict) -> np.ndarray:
    """Online LiRA: mean over queries of log N(phi; mu_in, sd_in) - log N(phi; mu_out, sd_out).
    phi_target [n] or [n, Q]; g from `fit_gaussians`. Higher = more likely a member."""
    p = _as_nq(phi_target)
    lr = gaussian_logpdf(p, g["mu_in"], g["sd_in"]) - gaussian_logpdf(p, g["mu_out"], g["sd_out"])
    return lr.mean(1)


def offline_scores(phi_target: np.ndarray, g: dict) -> np.ndarray:
    """Offline LiRA: mean over queries of log Pr[Z <= phi], Z ~ N(mu_out, sd_out^2) (one-sided,
    OUT shadows only). phi_target [n] or [n, Q]. Higher = more likely a member."""
    p = _as_nq(phi_target)
    return log_ndtr((p - g["mu_out"]) / g["sd_out"]).mean(1)


# --------------------------------------------------------------------------- queries
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


# --------------------------------------------------------------------------- pool and shadows
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
    acc = str(cfg.trainer.accelerator)
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


def shadow_states(ctx: AttackContext, pool: np.ndarray, keep: np.ndarray) -> tuple[list, dict]:
    """State dicts of the raw nets of the N shadow models (cached or trained now) and stats."""
    cfg, lc = ctx.cfg, ctx.cfg.attack.lira
    epochs = int(lc.epochs) if lc.epochs is not None else int(cfg.trainer.max_epochs)
    spec = farm_spec(cfg, epochs)
    path = "farm" if spec is not None else "lightning"
    cache = ModelCache(lc.cache_dir, CACHE_KIND) if str(lc.cache_dir) else None
    digest = _data_digest(ctx)
    n = keep.shape[0]
    sets = [np.sort(pool[keep[i]]) for i in range(n)]
    seeds = [shadow_seed(int(cfg.seed), i) for i in range(n)]
    fields = [
        shadow_fields(cfg, digest, sets[i], seeds[i], i, epochs, path, spec) for i in range(n)
    ]
    states: list = [cache.load(f) if cache else None for f in fields]
    todo = [i for i in range(n) if states[i] is None]
    stats = {"cached": n - len(todo), "trained": len(todo), "seconds": 0.0, "path": path}
    if todo:
        t0 = time.perf_counter()
        if spec is not None:
            device = farm_device(cfg)
            farm = train_farm(
                ctx.make_net,
                ctx.bundle.x.to(device),
                ctx.bundle.y.to(device),
                [sets[i] for i in todo],
                [seeds[i] for i in todo],
                spec,
                farm=str(lc.farm),
            )
            stats["path"] = f"farm/{farm.path}"
            new = [farm.state_dict(j) for j in range(len(todo))]
        else:
            new = [ctx.fit(sets[i], seeds[i], epochs).net.state_dict() for i in todo]
        stats["seconds"] = time.perf_counter() - t0
        for j, i in enumerate(todo):
            states[i] = {k: v.detach().cpu() for k, v in new[j].items()}
            if cache is not None:
                cache.save(fields[i], states[i])
    return states, stats


# --------------------------------------------------------------------------- the attack
def run_lira(ctx: AttackContext) -> AttackResult:
    cfg, a = ctx.cfg, ctx.cfg.attack
    lc = a.lira
    pool, n_ev = lira_pool(ctx)
    keep = keep_matrix(int(lc.n_shadow), len(pool), int(cfg.seed))
    states, st = shadow_states(ctx, pool, keep)

    x_ev, y_ev = subset(ctx.bundle, pool[:n_ev])
    views = query_views(x_ev, str(lc.augment))
    temp = float(cfg.target.temperature)
    with torch.random.fork_rng(devices=[]):  # leave the global RNG to the other attacks
        template = ctx.make_net()
    device = farm_device(cfg)
    params, buffers = stack_state_dicts(template, states, device)
    phi_sh, phi_t = [], []
    for j, v in enumerate(views):
        sl = ensemble_predict(template, params, buffers, v, int(a.batch_size)) / temp  # [N,n,K]
        tl = _target_logits(ctx, v)  # [n, K]
        phi_sh.append(phi_from_logits(sl, y_ev).numpy())  # [N, n]
        phi_t.append(phi_from_logits(tl, y_ev).numpy())  # [n]
        if j == 0:  # the plain query: accuracies and the target's CE losses
            sh_correct = (sl.argmax(-1) == y_ev).numpy()  # [N, n]
            logp = torch.log_softmax(tl.double(), 1).gather(1, y_ev[:, None])[:, 0]
            losses = (-logp).numpy()
    phi_sh = np.stack(phi_sh, -1)  # [N, n, Q]
    phi_t = np.stack(phi_t, -1)  # [n, Q]
    k_ev = keep[:, :n_ev]
    g = fit_gaussians(phi_sh, k_ev, bool(lc.fix_variance))
    scores = online_scores(phi_t, g) if lc.mode == "online" else offline_scores(phi_t, g)
    is_member = ctx.is_member()
    m = attack_metrics(a, int(cfg.seed), scores, is_member, losses=losses)
    m["tpr_at_fpr_0.0001"] = metrics.tpr_at_fpr(scores, is_member, 1e-4)
    n = int(lc.n_shadow)
    m.update(
        n_shadow=float(n),
        n_queries=float(len(views)),
        shadow_models_cached=float(st["cached"]),
        shadow_models_trained=float(st["trained"]),
        shadow_train_size=float(keep.sum(1).mean()),
        shadow_train_acc=float(sh_correct[k_ev].mean()),
        shadow_test_acc=float(sh_correct[~k_ev].mean()),
    )
    if st["trained"]:
        m["shadow_train_seconds"] = st["seconds"]
        m["shadow_models_per_min"] = 60.0 * st["trained"] / max(st["seconds"], 1e-9)
    member = is_member == 1
    fig = plots.loss_histogram(
        phi_t[member, 0],
        phi_t[~member, 0],
        bins=a.kl_bins,
        title=f"{label_of(cfg)}: LiRA phi on the target",
        xlabel="phi = log p_y - log sum_{j!=y} p_j",
    )
    summary = {
        "mode": str(lc.mode),
        "augment": str(lc.augment),
        "fix_variance": bool(lc.fix_variance),
        "n_shadow": n,
        "pool_size": len(pool),
        "n_eval_points": n_ev,
        "training_path": st["path"],
        "cached": st["cached"],
        "trained": st["trained"],
        "train_seconds": st["seconds"],
        "cache_dir": str(Path(str(lc.cache_dir)).resolve()) if str(lc.cache_dir) else None,
    }
    return AttackResult(
        m,
        scores=scores,
        is_member=is_member,
        losses=losses,
        index=pool[:n_ev],
        figures={"plots/lira_phi_hist.png": fig},
        texts={"lira/summary.json": json.dumps(summary, indent=2) + "\n"},
    )


def _target_logits(ctx: AttackContext, x: Tensor) -> Tensor:
    """Target logits (its forward: prediction-time temperature included) on x, CPU."""
    bs, dev = int(ctx.cfg.attack.batch_size), ctx.pred.device
    model = ctx.target.eval()
    with torch.no_grad():
        return torch.cat([model(x[i : i + bs].to(dev)).cpu() for i in range(0, len(x), bs)])


def check_lira(cfg: DictConfig) -> None:
    """Bad LiRA settings -> ConfigError naming the key, before anything trains."""
    lc = cfg.attack.lira
    if lc.mode not in MODES:
        raise unknown_name("attack.lira.mode", lc.mode, MODES)
    if lc.farm not in FARMS:
        raise unknown_name("attack.lira.farm", lc.farm, FARMS)
    if lc.augment not in AUGMENTS:
        raise unknown_name("attack.lira.augment", lc.augment, AUGMENTS)
    if lc.n_shadow < 2:
        need = "IN and OUT models" if lc.mode == "online" else "an OUT model"
        raise ConfigError(
            f"attack.lira.n_shadow must be >= 2 with attack.lira.mode={lc.mode} ({need} for "
            f"every evaluation point), got {lc.n_shadow}"
        )
    if lc.epochs is not None and lc.epochs < 1:
        raise ConfigError(f"attack.lira.epochs must be >= 1 or null, got {lc.epochs}")
    if str(lc.cache_dir):
        ModelCache(lc.cache_dir, CACHE_KIND, key_name="attack.lira.cache_dir")


LIRA_ATTACKS: dict[str, Attack] = {
    "lira": Attack(
        "lira",
        run_lira,
        check_lira,
        "LiRA (Carlini et al. 2022): per-example Gaussian likelihood ratio of phi",
        settings={"attack.lira": LiraSettings},
    ),
}

__all__ = [
    "AUGMENTS",
    "LIRA_ATTACKS",
    "MODES",
    "fit_gaussians",
    "gaussian_logpdf",
    "keep_matrix",
    "lira_pool",
    "offline_scores",
    "online_scores",
    "phi_from_logits",
    "query_views",
    "run_lira",
]
