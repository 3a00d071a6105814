"""LiRA, the Likelihood Ratio Attack (Carlini, Chien, Nasr, Song, Terzis, Tramer, "Membership
Inference Attacks From First Principles", IEEE S&P 2022, §IV and Algorithm 1;
docs/reference/paper-defaults.md#score-based-membership-inference).

Threat model: black-box access to the target's logits (prediction vectors) and the true label;
the attacker knows the training recipe (regime, architecture, optimiser, epochs) and holds a
data pool from the target's distribution that contains the candidate points (the online
setting). Steps:

1. Score: phi(x, y) = log p_y - log sum_{j != y} p_j (the logit-scaled confidence, §IV-B),
   computed stably from logits as z_y - logsumexp_{j != y} z_j (the softmax normaliser
   cancels), in float64, after the target's prediction-time temperature.
2. Shadow models: N models trained like the target (the farm, lit_mia/models/shadow_farm.py, or the
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
   The models, the pool and their logits live in models/reference_models.py, shared with RMIA
   within a run (trained once; logits streamed to a memory-mapped array).
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
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from scipy.special import log_ndtr
from torch import Tensor

from lit_mia import metrics, plots
from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.scoring import configured_metrics
from lit_mia.attacks.settings import LiraSettings  # noqa: F401 (re-export)
from lit_mia.errors import ConfigError, unknown_name
from lit_mia.models.cache import ModelCache
from lit_mia.models.reference_models import (  # re-exported (tests, bench)
    AUGMENTS,
    CACHE_KIND,
    FARM_KNOBS,
    MODELS_PER_CHUNK,
    PREDICTION_ONLY,
    farm_logits,
    farm_spec,
    keep_matrix,
    lira_pool,
    query_views,
    reference_farm,
    target_view_logits,
)
from lit_mia.models.shadow_farm import FARMS
from lit_mia.training import label_of, subset

MODES = ("online", "offline")
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


# --------------------------------------------------------------------------- the attack
def lira_scores(phi_sh, keep_ev, phi_t, mode: str, fix_variance: bool) -> np.ndarray:
    """LiRA scores of the target's phi_t [n, Q] given the shadows' phi_sh [N, n, Q] and
    keep_ev [N, n] (online or offline, `fit_gaussians`)."""
    g = fit_gaussians(phi_sh, keep_ev, fix_variance)
    return online_scores(phi_t, g) if mode == "online" else offline_scores(phi_t, g)


def shadow_phi(logits: np.ndarray, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(phi [N, n, Q], plain-query correctness [N, n]) from farm logits [N, n, Q, K] (a
    memmap), read MODELS_PER_CHUNK models at a time."""
    n_models = logits.shape[0]
    phi = np.empty(logits.shape[:3])
    correct = np.empty(logits.shape[:2], dtype=bool)
    for lo in range(0, n_models, MODELS_PER_CHUNK):
        lg = torch.from_numpy(np.array(logits[lo : lo + MODELS_PER_CHUNK]))
        phi[lo : lo + len(lg)] = phi_from_logits(lg, y[None, :, None]).numpy()
        correct[lo : lo + len(lg)] = (lg[:, :, 0].argmax(-1) == y).numpy()
    return phi, correct


def run_lira(ctx: AttackContext) -> AttackResult:
    cfg, a = ctx.cfg, ctx.cfg.attack
    lc = a.lira
    n = int(lc.n_shadow)
    farm = reference_farm(ctx, n)
    pool, n_ev, st = farm.pool, farm.n_ev, farm.stats
    keep = farm.keep(n, int(cfg.seed))
    ev = pool[:n_ev]
    _, y_ev = subset(ctx.bundle, ev)
    phi_sh, sh_correct = shadow_phi(farm_logits(ctx, n, ev, str(lc.augment)), y_ev)
    tl = target_view_logits(ctx, ev, str(lc.augment))  # [n, Q, K]
    phi_t = phi_from_logits(tl, y_ev[:, None]).numpy()  # [n, Q]
    logp = torch.log_softmax(tl[:, 0].double(), 1).gather(1, y_ev[:, None])[:, 0]
    losses = (-logp).numpy()  # the plain query: the target's CE losses
    k_ev = keep[:, :n_ev]
    scores = lira_scores(phi_sh, k_ev, phi_t, str(lc.mode), bool(lc.fix_variance))
    is_member = ctx.is_member()
    m = configured_metrics(a, int(cfg.seed), scores, is_member, losses=losses)
    m.update(metrics.tpr_at_fpr_keys(scores, is_member, 1e-4))  # flags TPR at zero FP
    m.update(
        n_shadow=float(n),
        n_queries=float(phi_t.shape[1]),
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


__all__ = [
    "AUGMENTS",
    "CACHE_KIND",
    "FARM_KNOBS",
    "MODES",
    "PREDICTION_ONLY",
    "farm_spec",
    "fit_gaussians",
    "gaussian_logpdf",
    "keep_matrix",
    "lira_pool",
    "lira_scores",
    "offline_scores",
    "online_scores",
    "phi_from_logits",
    "query_views",
    "run_lira",
    "shadow_phi",
]
