"""RMIA, the Relative Membership Inference Attack (Zarifzadeh, Liu, Mahloujifar, Shokri,
"Low-Cost High-Power Membership Inference Attacks", ICML 2024, §3 and Algorithm 1).

Threat model: as LiRA's (attacks/lira.py): black-box probabilities of the target, the training
recipe, a pool of data from the target's distribution holding the candidates; reference models
are LiRA's shadow models (models/reference_models.py: the same farm, trained once per run and
cached; settings `attack.lira.farm`, `epochs`, `cache_dir`).

Score of a candidate x with label y against a population Z of points the target was not
trained on (`split.shadow` points outside the reference models' pool):

    LR_θ(x, z) = (p(x|θ) / p(x)) / (p(z|θ) / p(z)),    score(x) = Pr_{z ∈ Z}[LR_θ(x, z) >= γ]

with p(x|θ) the target's softmax probability of x's true class and p(x) = the mean of
p(x|θ_r) over reference models θ_r (the prior of x, Bayes' rule in the paper's eq. 2-4):

- online: every reference model (IN and OUT for x; the farm's balanced keep matrix makes p(x)
  the average of IN and OUT means);
- offline: only the reference models x was OUT of, corrected for the missing IN models by the
  paper's linear approximation p(x) = ½((1 + a)·p_OUT(x) + (1 - a)) (§3, "offline"); the same
  correction for p(z) (z is OUT of every reference). `a` (`attack.rmia.a`) is fixed, or, when
  null, chosen on reference model 0 used as a stand-in target (its own IN/OUT split of the pool
  as the truth, references 1.. as its references) by the best AUC on a grid of 21 values in
  [0, 1] — no target membership is seen.

Augmentation queries (`attack.rmia.augment`, the views of attacks/reference_models.query_views):
the comparison is made per query and the fractions averaged over queries.

Metrics: the shared set of metrics.attack_metrics (AUC, TPR at 1% / 0.1% FPR, bootstrap CIs,
ε and μ lower bounds, PPV at low prior) plus `tpr_at_fpr_0.0001`, `n_references`,
`population`, `a` (the offline correction used). No calibration shadow: the references are
its calibration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from lit_mia import metrics
from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.scoring import configured_metrics
from lit_mia.attacks.settings import RmiaSettings
from lit_mia.errors import ConfigError, require, unknown_name
from lit_mia.models.reference_models import (
    AUGMENTS,
    MODELS_PER_CHUNK,
    farm_logits,
    reference_farm,
    target_view_logits,
)
from lit_mia.training import subset

MODES = ("online", "offline")
MAX_REFERENCES = 256
"""Most reference models one run trains (the paper's largest farm is 254 models)."""
A_GRID = np.linspace(0.0, 1.0, 21)
"""Candidate values of the offline correction `a` when it is chosen on a reference model."""


# --------------------------------------------------------------------------- pure math
def true_class_prob(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Softmax probability of class y [n] from logits [..., n, Q, K] (float64) -> [..., n, Q]."""
    z = torch.from_numpy(np.asarray(logits, dtype=np.float64))
    logp = torch.log_softmax(z, -1)
    yy = torch.as_tensor(np.asarray(y), dtype=torch.long)[:, None, None]
    yy = yy.expand(*z.shape[:-1], 1)
    return logp.gather(-1, yy)[..., 0].exp().numpy()


def prior_prob(p_ref: np.ndarray, out_mask: np.ndarray | None, mode: str, a: float) -> np.ndarray:
    """p(x) from reference probabilities p_ref [R, n, Q]: online = mean over all references;
    offline = ½((1 + a)·p_OUT + (1 - a)), p_OUT the mean over references where out_mask [R, n]
    is True (None = all references are OUT)."""
    if mode == "online":
        return p_ref.mean(0)
    w = np.ones(p_ref.shape[:2]) if out_mask is None else out_mask.astype(np.float64)
    count = w.sum(0)
    if np.any(count == 0):
        raise ConfigError(
            "attack.rmia.n_references too small for mode=offline: some candidate has no "
            "reference model it was OUT of (use n_references >= 2)"
        )
    p_out = (p_ref * w[:, :, None]).sum(0) / count[:, None]
    return 0.5 * ((1.0 + a) * p_out + (1.0 - a))


def rmia_scores(
    p_x: np.ndarray, prior_x: np.ndarray, p_z: np.ndarray, prior_z: np.ndarray, gamma: float
) -> np.ndarray:
    """Score(x) = mean over queries of the fraction of z with (p_x/prior_x)/(p_z/prior_z) >= γ.

    p_x, prior_x [n, Q]; p_z, prior_z [P, Q]. O((n + P) log P) per query (sorted ratios)."""
    rx = np.asarray(p_x, np.float64) / np.asarray(prior_x, np.float64)
    rz = np.asarray(p_z, np.float64) / np.asarray(prior_z, np.float64)
    out = np.zeros(rx.shape[0])
    for q in range(rx.shape[1]):
        zs = np.sort(rz[:, q])
        # LR >= gamma  <=>  rz <= rx / gamma (all ratios positive)
        out += np.searchsorted(zs, rx[:, q] / gamma, side="right") / zs.size
    return out / rx.shape[1]


def choose_a(p_ref_x, keep_x, p_ref_z, gamma: float, grid=A_GRID) -> tuple[float, float]:
    """Offline `a` chosen with reference model 0 as a stand-in target: (a, its AUC).

    p_ref_x [R, n, Q] reference probabilities on the candidates, keep_x [R, n] their membership
    in the references, p_ref_z [R, P, Q] on the population. Candidates without an OUT model
    among references 1.. are left out; ConfigError when no two-class set remains."""
    keep_x = np.asarray(keep_x, dtype=bool)
    out = ~keep_x[1:]
    ok = out.any(0)
    truth = keep_x[0, ok]
    if ok.sum() < 2 or truth.all() or not truth.any():
        raise ConfigError(
            "attack.rmia.a=null needs reference models beyond the stand-in with OUT models for "
            "its members and non-members (n_references >= 3), or set attack.rmia.a"
        )
    best = (float(grid[0]), -1.0)
    for a in grid:
        px = prior_prob(p_ref_x[1:, ok], out[:, ok], "offline", float(a))
        pz = prior_prob(p_ref_z[1:], None, "offline", float(a))
        s = rmia_scores(p_ref_x[0, ok], px, p_ref_z[0], pz, gamma)
        auc = metrics.roc_auc(s, truth)
        if auc > best[1] + 1e-12:
            best = (float(a), auc)
    return best


# --------------------------------------------------------------------------- data
def population_idx(ctx: AttackContext, pool: np.ndarray, size: int) -> np.ndarray:
    """The first `size` points of split.shadow outside the reference pool (never target
    members, never in any reference model's training set); ConfigError when there are none."""
    avail = np.setdiff1d(np.asarray(ctx.split.shadow, dtype=np.int64), pool, assume_unique=False)
    if avail.size == 0:
        raise ConfigError(
            "attack.rmia.population: no split.shadow point lies outside the reference models' "
            "pool; raise data.n_shadow"
        )
    rng = np.random.default_rng((int(ctx.cfg.seed), 0x3A1A))
    return np.sort(rng.permutation(avail)[: min(int(size), avail.size)])


@dataclass
class RmiaInputs:
    """Probabilities of the target (p_x [n, Q], p_z [P, Q]) and of the references
    (ref_x [R, n, Q], ref_z [R, P, Q]) with keep_x [R, n] (candidate IN reference)."""

    p_x: np.ndarray
    p_z: np.ndarray
    ref_x: np.ndarray
    ref_z: np.ndarray
    keep_x: np.ndarray
    index: np.ndarray
    losses: np.ndarray


def rmia_inputs(ctx: AttackContext, n_refs: int, population: int, augment: str) -> RmiaInputs:
    """Everything RMIA needs for `n_refs` references of the run's farm (reference_models)."""
    farm = reference_farm(ctx, n_refs)
    ev = farm.pool[: farm.n_ev]
    z_idx = population_idx(ctx, farm.pool, population)
    _, y_ev = subset(ctx.bundle, ev)
    _, y_z = subset(ctx.bundle, z_idx)
    y_ev, y_z = y_ev.numpy(), y_z.numpy()

    def refs(idx, y):
        lg = farm_logits(ctx, n_refs, idx, augment)  # memmap [R, n, Q, K]
        return np.concatenate(
            [
                true_class_prob(np.array(lg[lo : lo + MODELS_PER_CHUNK]), y)
                for lo in range(0, n_refs, MODELS_PER_CHUNK)
            ]
        )

    tx = target_view_logits(ctx, ev, augment).double()
    tz = target_view_logits(ctx, z_idx, augment).double()
    logp = torch.log_softmax(tx[:, 0], 1).gather(1, torch.as_tensor(y_ev)[:, None])[:, 0]
    return RmiaInputs(
        p_x=true_class_prob(tx.numpy(), y_ev),
        p_z=true_class_prob(tz.numpy(), y_z),
        ref_x=refs(ev, y_ev),
        ref_z=refs(z_idx, y_z),
        keep_x=farm.keep(n_refs, int(ctx.cfg.seed))[:, : farm.n_ev],
        index=ev,
        losses=(-logp).numpy(),
    )


def scores_for(inp: RmiaInputs, n: int, mode: str, a: float, gamma: float) -> np.ndarray:
    """RMIA scores with the first n references of `inp`."""
    out_mask = ~inp.keep_x[:n]
    px = prior_prob(inp.ref_x[:n], out_mask, mode, a)
    pz = prior_prob(inp.ref_z[:n], None, mode, a)
    return rmia_scores(inp.p_x, px, inp.p_z, pz, gamma)


# --------------------------------------------------------------------------- the attack
def run_rmia(ctx: AttackContext) -> AttackResult:
    cfg, a_cfg = ctx.cfg, ctx.cfg.attack
    rc = a_cfg.rmia
    n = int(rc.n_references)
    inp = rmia_inputs(ctx, n, int(rc.population), str(rc.augment))
    a = 1.0
    a_auc = None
    if rc.mode == "offline":
        if rc.a is None:
            a, a_auc = choose_a(inp.ref_x, inp.keep_x, inp.ref_z, float(rc.gamma))
        else:
            a = float(rc.a)
    scores = scores_for(inp, n, str(rc.mode), a, float(rc.gamma))
    is_member = ctx.is_member()
    m = configured_metrics(a_cfg, int(cfg.seed), scores, is_member, losses=inp.losses)
    m.update(metrics.tpr_at_fpr_keys(scores, is_member, 1e-4))  # flags TPR at zero FP
    m.update(
        n_references=float(n),
        population=float(inp.p_z.shape[0]),
        n_queries=float(inp.p_x.shape[1]),
    )
    if rc.mode == "offline":
        m["a"] = a
        if a_auc is not None:
            m["a_standin_auc"] = a_auc
    summary = {
        "mode": str(rc.mode),
        "n_references": n,
        "a": a if rc.mode == "offline" else None,
        "a_chosen_on_reference_0": rc.mode == "offline" and rc.a is None,
        "gamma": float(rc.gamma),
        "population": int(inp.p_z.shape[0]),
        "augment": str(rc.augment),
    }
    return AttackResult(
        m,
        scores=scores,
        is_member=is_member,
        losses=inp.losses,
        index=inp.index,
        texts={"rmia/summary.json": json.dumps(summary, indent=2) + "\n"},
    )


def check_rmia(cfg: DictConfig) -> None:
    """Bad RMIA settings -> ConfigError naming the key, before anything trains."""
    rc = cfg.attack.rmia
    if rc.mode not in MODES:
        raise unknown_name("attack.rmia.mode", rc.mode, MODES)
    if rc.augment not in AUGMENTS:
        raise unknown_name("attack.rmia.augment", rc.augment, AUGMENTS)
    require(
        1 <= rc.n_references <= MAX_REFERENCES,
        "attack.rmia.n_references",
        f"in [1, {MAX_REFERENCES}] (reference models the farm trains)",
        rc.n_references,
    )
    if rc.mode == "offline":
        need = 3 if rc.a is None else 2
        why = "reference 0 stands in for the target to choose a" if rc.a is None else "OUT models"
        require(
            rc.n_references >= need,
            "attack.rmia.n_references",
            f">= {need} with attack.rmia.mode=offline ({why})",
            rc.n_references,
        )
    require(rc.a is None or 0 <= rc.a <= 1, "attack.rmia.a", "in [0, 1] or null", rc.a)
    require(rc.gamma > 0, "attack.rmia.gamma", "> 0", rc.gamma)
    require(rc.population >= 1, "attack.rmia.population", ">= 1", rc.population)


__all__ = [
    "RmiaInputs",
    "RmiaSettings",
    "choose_a",
    "prior_prob",
    "rmia_inputs",
    "rmia_scores",
    "run_rmia",
    "scores_for",
    "true_class_prob",
]
