"""Score attacks: a per-sample membership score turned into the shared metric set.

A *scorer* maps (Predictor, set name, config) -> (scores [N], CE losses [N] or None), higher
score = more likely a member. A registry entry with a `scorer` (attacks/base.py `Attack`)
runs `scored_result`, which

1. scores the target's evaluation members and non-members (`ctx.pred`);
2. with `attack.calibrate`, scores shadow model 0's own members / non-members the same way and
   chooses the threshold there: per class (Song & Mittal 2021) or global (`attack.calibration`)
   -> `acc_calibrated`, `advantage_calibrated`, ...; the oracle numbers stay `*_best`;
3. adds bootstrap CIs (`attack.bootstrap` resamples) and the loss KL (metrics.attack_metrics).

Label-only scorers receive the same Predictor but must query it only through a label oracle.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from omegaconf import DictConfig

from lit_mia import metrics
from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.registry import ATTACKS
from lit_mia.predictor import Predictor

Scorer = Callable[[Predictor, str, DictConfig], tuple[np.ndarray, np.ndarray | None]]


def score_pair(pred: Predictor, scorer: Scorer, cfg: DictConfig):
    """(scores, losses or None, is_member, labels) of `scorer` over members + non-members."""
    sm, lm = scorer(pred, "members", cfg)
    sn, ln = scorer(pred, "nonmembers", cfg)
    losses = None if lm is None or ln is None else np.r_[lm, ln]
    is_member = np.r_[np.ones(len(sm), dtype=int), np.zeros(len(sn), dtype=int)]
    labels = np.r_[pred.labels("members").numpy(), pred.labels("nonmembers").numpy()]
    return np.r_[sm, sn], losses, is_member, labels


def configured_metrics(acfg, seed: int, scores, is_member, **kwargs) -> dict[str, float]:
    """metrics.attack_metrics with the run's shared settings: KL bins and bootstrap CIs from
    `acfg` (= cfg.attack), the bootstrap seeded by the experiment seed."""
    return metrics.attack_metrics(
        scores,
        is_member,
        kl_bins=acfg.kl_bins,
        bootstrap=acfg.bootstrap,
        ci_level=acfg.ci_level,
        seed=seed,
        alpha=acfg.alpha,  # eps_lb / mu_lb confidence and delta (metrics/privacy.py)
        delta=acfg.delta,
        **kwargs,
    )


def shadow_side(ctx: AttackContext, scorer: Scorer) -> dict[str, np.ndarray]:
    """The calibration data: `scorer` on shadow model 0's own members / non-members
    (`shadow_scores`, `shadow_is_member`, `shadow_labels`). Nothing of the target enters."""
    sp = ctx.shadow_models(1)[0].predictor
    ss, _, sm, sl = score_pair(sp, scorer, ctx.cfg)
    return {"shadow_scores": ss, "shadow_is_member": sm, "shadow_labels": sl}


def calibration_thresholds(ctx: AttackContext, name: str) -> dict:
    """The thresholds score attack `name` applies to the target when calibrated:
    {"global": t, "per_class": {class: t}} chosen on `shadow_side` only (Song & Mittal 2021)."""
    sh = shadow_side(ctx, ATTACKS[name].scorer)
    thr, _ = metrics.best_threshold(sh["shadow_scores"], sh["shadow_is_member"])
    per_class = metrics.class_thresholds(
        sh["shadow_scores"], sh["shadow_is_member"], sh["shadow_labels"]
    )
    return {"global": thr, "per_class": per_class}


def scored_result(ctx: AttackContext, scorer: Scorer, scores=None, losses=None) -> AttackResult:
    """Metrics of a scorer on the target (optionally pre-computed `scores`/`losses`),
    calibrated on shadow model 0 when `attack.calibrate`."""
    cfg, a = ctx.cfg, ctx.cfg.attack
    if scores is None:
        scores, losses, is_member, labels = score_pair(ctx.pred, scorer, cfg)
    else:
        is_member = ctx.is_member()
        labels = np.r_[ctx.pred.labels("members").numpy(), ctx.pred.labels("nonmembers").numpy()]
    shadow = {}
    if a.calibrate:
        shadow = shadow_side(ctx, scorer)
        if a.calibration == "per_class":
            shadow["labels"] = labels
        else:
            del shadow["shadow_labels"]
    m = configured_metrics(a, int(cfg.seed), scores, is_member, losses=losses, **shadow)
    index = np.r_[ctx.eval_idx["members"], ctx.eval_idx["nonmembers"]]
    return AttackResult(m, scores=scores, is_member=is_member, losses=losses, index=index)


def calibration_shadows(cfg: DictConfig) -> int:
    """One shadow model (model 0) when thresholds are calibrated (`attack.calibrate`)."""
    return 1 if cfg.attack.calibrate else 0


__all__ = [
    "Scorer",
    "calibration_shadows",
    "calibration_thresholds",
    "configured_metrics",
    "score_pair",
    "scored_result",
    "shadow_side",
]
