"""What the label-only attacks share: the evaluation subset they attack and their metric set.

`eval_subset(ctx, n)` takes the first n members and first n non-members of the target's
evaluation sets (inputs and true labels only, never predictions). `label_result` turns per-sample
scores (higher = member) into the shared metric set of `metrics.attack_metrics` (AUC, oracle
threshold, TPR at low FPR, bootstrap CIs; `*_calibrated` only where the attack supplies shadow
scores of its own), as `scoring.scored_result` does for attacks scored through a Predictor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lit_mia import metrics
from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.scoring import configured_metrics


@dataclass
class EvalSubset:
    """Members then non-members: x [2n, *], y [2n], is_member [2n], dataset indices [2n]."""

    x: Tensor
    y: Tensor
    is_member: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def eval_subset(ctx: AttackContext, n: int | None = None) -> EvalSubset:
    """The first min(n, ctx.n_eval) members and as many non-members of the evaluation sets."""
    k = ctx.n_eval if n is None else min(int(n), ctx.n_eval)
    xm, ym = ctx.pred.sets["members"]
    xn, yn = ctx.pred.sets["nonmembers"]
    return EvalSubset(
        x=torch.cat([xm[:k], xn[:k]]),
        y=torch.cat([ym[:k], yn[:k]]),
        is_member=np.r_[np.ones(k, dtype=int), np.zeros(k, dtype=int)],
        index=np.r_[ctx.eval_idx["members"][:k], ctx.eval_idx["nonmembers"][:k]],
    )


def label_result(
    ctx: AttackContext,
    scores: np.ndarray,
    sub: EvalSubset,
    losses: np.ndarray | None = None,
    shadow: dict | None = None,
) -> AttackResult:
    """AttackResult with metrics.attack_metrics of `scores` over `sub` (cfg's kl_bins,
    bootstrap, ci_level, seed); `shadow` = attack_metrics' shadow_* keywords, if any."""
    m = configured_metrics(
        ctx.cfg.attack, int(ctx.cfg.seed), scores, sub.is_member, losses=losses, **(shadow or {})
    )
    return AttackResult(
        m,
        scores=np.asarray(scores, dtype=float),
        is_member=sub.is_member,
        losses=losses,
        index=sub.index,
    )


def auc(scores: np.ndarray, is_member: np.ndarray) -> float:
    return float(metrics.roc_auc(scores, is_member))


__all__ = ["EvalSubset", "auc", "eval_subset", "label_result"]
