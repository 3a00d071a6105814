"""Shadow-model membership inference (Shokri et al. S&P'17; Salem et al. NDSS'19, ML-Leaks).

Threat model: black-box prediction vectors F(x) of the target (plus the true label for the
`label` features), and data from the target's distribution, disjoint from its training set
(the split's shadow pool), to train `attack.shadow.n_models` shadow models the way the target
was trained (same regime, net and config; attacks/context.py: model i on `shadow_split(i)`'s
"in" half, its "out" half held out, equal sizes).

The attack classifier (classifier.InferenceClassifier, hidden `attack.shadow.hidden`, ML-Leaks:
one layer of 64) learns "in" (1) vs "out" (0) from the shadow models' prediction vectors on
their own in / out samples (`attack.n_eval` of each per model, as the target's evaluation set),
pooled over the shadow models, and is then applied to the target's evaluation members and
non-members (ctx.pred). Features (`attack.shadow.features`):
  sorted  the top_k largest probabilities, descending (ML-Leaks adversary 1: top 3; class- and
          label-agnostic, so one attack model serves every class)
  label   the full vector F(x) [K] followed by the one-hot label [K]: one model conditioned on
          the class instead of Shokri's one model per class
Score = member log-odds of the attack classifier (same order as its probability); `acc` = its
own decision (p > 0.5) beside the oracle-threshold `acc_best` of metrics.attack_metrics.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.classifier import decision_summary, fit_classifier, member_log_odds
from lit_mia.attacks.confidence import confidence_and_loss
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.settings import ShadowAttackSettings  # noqa: F401 (re-export)
from lit_mia.errors import ConfigError, unknown_name
from lit_mia.predictor import Predictor

SHADOW_FEATURES = ("sorted", "label")


def shadow_features(logits: torch.Tensor, y: torch.Tensor, kind: str, top_k: int) -> np.ndarray:
    """[N, D] attack features of logits [N, K] with labels y [N]: `sorted` -> D = min(top_k, K)
    largest softmax probabilities, descending; `label` -> D = 2K (softmax, one-hot y)."""
    p = torch.softmax(logits.double(), dim=1)
    if kind == "sorted":
        return p.sort(dim=1, descending=True).values[:, : min(top_k, p.shape[1])].numpy()
    if kind == "label":
        return torch.cat([p, F.one_hot(y.long(), p.shape[1]).double()], dim=1).numpy()
    raise unknown_name("shadow feature kind (key attack.shadow.features)", kind, SHADOW_FEATURES)


def _pair(pred: Predictor, kind: str, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """(features, is_member) of a predictor's members then non-members."""
    fs = [
        shadow_features(pred.logits(n), pred.labels(n), kind, top_k)
        for n in ("members", "nonmembers")
    ]
    member = np.r_[np.ones(len(fs[0]), dtype=int), np.zeros(len(fs[1]), dtype=int)]
    return np.concatenate(fs), member


def shadow_attack(ctx: AttackContext) -> AttackResult:
    cfg, s = ctx.cfg, ctx.cfg.attack.shadow
    kind, top_k = str(s.features), int(s.top_k)
    train = [_pair(m.predictor, kind, top_k) for m in ctx.shadow_models(int(s.n_models))]
    xs = np.concatenate([f for f, _ in train])
    ys = np.concatenate([m for _, m in train])
    clf = fit_classifier(
        xs,
        ys,
        hidden=list(s.hidden),
        epochs=int(s.epochs),
        lr=float(s.lr),
        batch_size=int(s.batch_size),
        seed=int(cfg.seed),
        accelerator=str(cfg.trainer.accelerator),
        deterministic=cfg.trainer.deterministic,
    )
    feats, member = _pair(ctx.pred, kind, top_k)
    scores = member_log_odds(clf, feats)
    logits = torch.cat([ctx.pred.logits("members"), ctx.pred.logits("nonmembers")])
    labels = torch.cat([ctx.pred.labels("members"), ctx.pred.labels("nonmembers")])
    _, losses = confidence_and_loss(logits, labels)
    m = decision_summary(scores, scores > 0, member, cfg.attack, int(cfg.seed), losses=losses)
    shadow_acc = ((member_log_odds(clf, xs) > 0) == (ys == 1)).mean()
    m.update(n_models=float(s.n_models), n_features=float(xs.shape[1]), train_acc=shadow_acc)
    index = np.r_[ctx.eval_idx["members"], ctx.eval_idx["nonmembers"]]
    return AttackResult(m, scores=scores, is_member=member, losses=losses, index=index)


def check_shadow_settings(cfg: DictConfig) -> None:
    s = cfg.attack.shadow
    if not s.n_models >= 1:
        raise ConfigError(f"attack.shadow.n_models must be >= 1, got {s.n_models!r}")
    if s.features not in SHADOW_FEATURES:
        raise unknown_name(
            "shadow feature kind (key attack.shadow.features)", s.features, SHADOW_FEATURES
        )
    for key in ("top_k", "epochs", "batch_size"):
        if not s[key] >= 1:
            raise ConfigError(f"attack.shadow.{key} must be >= 1, got {s[key]!r}")
    if not s.lr > 0:
        raise ConfigError(f"attack.shadow.lr must be > 0, got {s.lr!r}")
    if any(h < 1 for h in s.hidden):
        raise ConfigError(f"attack.shadow.hidden sizes must be >= 1, got {list(s.hidden)}")
    if cfg.data.n_shadow < 2:
        raise ConfigError(
            f"data.n_shadow must be >= 2 for the shadow attack (in/out halves of the shadow "
            f"pool), got {cfg.data.n_shadow}"
        )


__all__ = ["SHADOW_FEATURES", "shadow_attack", "shadow_features"]
