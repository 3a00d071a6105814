"""The placebo control of every run (`attack.placebo`, metrics/placebo.py): each score attack of
the run scores the target's evaluation members and non-members again, but on *shadow model 0*
instead of the target.

Shadow model 0 is trained like the target (regime, net, epochs, as many points as the
target's members; attacks/context.py) on `shadow_split(split, 0)`'s "in" set, which the
membership split draws from the shadow pool, disjoint from the target's members and
non-members by construction (data/splits.py checks it). So the placebo's "members" (the
target's members) and "non-members" (the target's non-members) are both unseen by it, and
every attack must sit at chance against it; `placebo_model` checks that disjointness on the
indices themselves before scoring. It is the calibration shadow that score attacks train
anyway (`attack.calibrate`), so the placebo costs one scoring pass per attack and no
training; when no listed attack trains it, `placebo_shadows` asks for it up front (one model
like the target) if the shadow pool can hold it.

Attacks without a scorer (LiRA, RMIA, the inference classifiers, label-only decision
attacks, ...) train or query per-target machinery and get no placebo; the report says which
attacks were controlled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import DictConfig

from lit_mia.attacks.base import LABEL_ONLY, MEMBERSHIP
from lit_mia.attacks.context import AttackContext, ShadowModel, shadow_sizes
from lit_mia.attacks.registry import ATTACKS
from lit_mia.attacks.scoring import score_pair
from lit_mia.data.splits import MembershipSplit
from lit_mia.metrics import keys
from lit_mia.metrics.placebo import placebo_metrics
from lit_mia.predictor import Predictor


def placebo_attacks(attacks: list[str]) -> list[str]:
    """The attacks of `attacks` that get a placebo: score attacks (entries with a scorer) of
    kind membership or label_only."""
    return [
        a for a in attacks
        if ATTACKS[a].scorer is not None and ATTACKS[a].kind in (MEMBERSHIP, LABEL_ONLY)
    ]  # fmt: skip


def placebo_shadows(cfg: DictConfig, split: MembershipSplit) -> int:
    """1 when `attack.placebo` is on, an attack gets a placebo and the shadow pool holds shadow
    model 0's in and out sets; else 0 (the run then logs `placebo/available` = 0)."""
    if not cfg.attack.placebo or not placebo_attacks(list(cfg.attacks)):
        return 0
    n_in, n_out = shadow_sizes(split)
    return int(len(split.shadow) >= n_in + n_out)


def placebo_model(ctx: AttackContext) -> ShadowModel | None:
    """Shadow model 0 when the context trained it, after checking that it trained on none of
    the evaluation members or non-members (AssertionError otherwise: a broken split)."""
    if not getattr(ctx, "shadows_trained", 0):
        return None
    sh = ctx.shadow_models(1)[0]
    for role in ("members", "nonmembers"):
        seen = np.intersect1d(sh.in_idx, ctx.eval_idx[role])
        if seen.size:
            raise AssertionError(
                f"placebo: shadow model 0 trained on {seen.size} evaluation {role} "
                f"(e.g. {seen[:5].tolist()}); it cannot serve as a placebo"
            )
    return sh


def placebo_scores(ctx: AttackContext, attacks: list[str]) -> dict[str, tuple[Any, Any]]:
    """attack -> (scores, is_member) of each placebo attack's scorer on the placebo model over
    the target's evaluation sets; {} without a placebo model."""
    sh = placebo_model(ctx)
    if sh is None:
        return {}
    pred = Predictor(sh.module, ctx.pred.sets, ctx.pred.batch_size, device=ctx.pred.device)
    out = {}
    for name in placebo_attacks(attacks):
        s, _, m, _ = score_pair(pred, ATTACKS[name].scorer, ctx.cfg)
        out[name] = (s, m)
    return out


def wants_placebo(ctx: Any, attacks: list[str]) -> bool:
    """`attack.placebo` is on and some attack of `attacks` gets a placebo (an AttackContext:
    update-leakage contexts have none)."""
    cfg = getattr(ctx, "cfg", None)
    return (
        isinstance(ctx, AttackContext)
        and bool(cfg.attack.placebo)
        and bool(placebo_attacks(attacks))
    )


def placebo_keys(ctx: AttackContext, attacks: list[str]) -> dict[str, float]:
    """The placebo metrics under their keys (`placebo/<attack>/<metric>`, `placebo/off_chance`,
    `placebo/available`, 0.0 when no shadow model 0 was trained); call when `wants_placebo`."""
    cfg = ctx.cfg
    scores = placebo_scores(ctx, attacks)
    if not scores:
        return {keys.placebo_fact("available"): 0.0}
    per, off = placebo_metrics(scores, float(cfg.attack.ci_level))
    out = {keys.placebo(a, k): v for a, r in per.items() for k, v in r.items()}
    out[keys.placebo_fact("available")] = 1.0
    out[keys.placebo_fact("off_chance")] = off
    return out


__all__ = [
    "placebo_attacks",
    "placebo_keys",
    "placebo_model",
    "placebo_scores",
    "placebo_shadows",
    "wants_placebo",
]
