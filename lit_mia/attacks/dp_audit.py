"""DP-SGD audit with canaries (`dp_audit`): an empirical lower bound ε̂ on the privacy of the
target's training procedure, next to the accountant's ε (`train/dp_epsilon`, targets/dp.py).

Procedure (Jagielski, Ullman, Oprea NeurIPS 2020; Nasr et al. S&P 2021; Steinke, Nasr,
Jagielski, "Privacy Auditing with One (1) Training Run", NeurIPS 2023):

1. m canaries (`attack.dp_audit.canaries`) are drawn from `split.shadow` (never target members
   or evaluation points). `mislabel`: each gets a random wrong label (the classic audit
   canary, memorised only through its own gradient); `natural`: unmodified points (in
   distribution: a weak, realistic canary).
2. Each canary is included with probability ½ (seeded), and one model is trained *exactly like
   the target* (`ctx.fit` semantics: same regime, DP-SGD settings, epochs) on the target's
   members plus the included canaries: one training run.
3. Score: minus the model's cross-entropy on the canary with its (canary) label (the loss
   attack; with mislabelled canaries the strongest black-box signal available here).
4. ε̂ from two estimators, at the target's δ (`target.dp_delta`) and confidence 1 - α
   (`attack.alpha`):
   - `eps_cp`: Clopper–Pearson. The threshold is chosen on a random half of the canaries
     (largest empirical eps_lb there) and evaluated once on the other half
     (metrics.eps_lb_at: one-sided CP bounds on FPR and FNR at α/2 each), so the bound holds
     at confidence 1 - α.
   - `eps_one_run`: Steinke et al. 2023: the attacker guesses "IN" for the k+ top-scored and
     "OUT" for the k- bottom-scored canaries (k± = `guess_fraction`·m/2 each, fixed in
     advance) and abstains on the rest; ε̂ = the largest ε whose p-value, P[Binomial(r, p_ε)
     >= W] plus the paper's 2mδ term for δ > 0 (their Theorem 5.2 / Algorithm 2), is <= α
     (lit_mia/metrics/one_run.py). Its only randomness is the canaries' independent inclusion.
   - `eps_cp` treats the canaries' (FPR, FNR) counts as binomial: that rests on the same
     independent inclusion of canaries, not on independent training runs (there is one).

Metrics: `eps_cp`, `eps_one_run`, `dp_epsilon` (the accountant's ε of the audited model; absent
for a non-private target), `canaries`, `canaries_in`, `one_run_guesses`, `one_run_correct`,
`audit_train_acc` (the audited model on its canaries), and the shared metric set of the canary
scores (AUC, ..., the empirical `eps_lb`, which maximises over thresholds on the same scores).
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch
from omegaconf import DictConfig

from lit_mia import training
from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.scoring import configured_metrics
from lit_mia.attacks.settings import DpAuditSettings
from lit_mia.data.datasets import DatasetBundle
from lit_mia.errors import ConfigError, require, unknown_name
from lit_mia.metrics.one_run import one_run_eps, one_run_guesses
from lit_mia.metrics.privacy import eps_lb_at

CANARY_KINDS = ("mislabel", "natural")


# --------------------------------------------------------------------------- estimators
def split_cp_eps(scores, included, alpha: float, delta: float, seed: int) -> float:
    """`eps_cp`: threshold chosen on a random half (best empirical eps_lb there), the sound
    fixed-rule bound (metrics.eps_lb_at) on the other half."""
    rng = np.random.default_rng((seed, 0xCA9))
    perm = rng.permutation(scores.size)
    a, b = perm[: scores.size // 2], perm[scores.size // 2 :]
    sa, ia = scores[a], included[a]
    if ia.all() or not ia.any() or included[b].all() or not included[b].any():
        return 0.0
    best_t, best = math.inf, -1.0
    for t in np.unique(sa):
        e = eps_lb_at(sa >= t, ia, alpha, delta)
        if e > best:
            best_t, best = float(t), e
    return eps_lb_at(scores[b] >= best_t, included[b], alpha, delta)


# --------------------------------------------------------------------------- the attack
def canary_bundle(bundle: DatasetBundle, idx: np.ndarray, kind: str, seed: int):
    """(bundle with canary labels, canary labels): mislabel -> a random other class."""
    y = bundle.y.clone()
    if kind == "mislabel":
        rng = np.random.default_rng((seed, 0xBAD))
        shift = rng.integers(1, bundle.n_classes, idx.size)
        y[idx] = (bundle.y[idx] + torch.as_tensor(shift)) % bundle.n_classes
    b = DatasetBundle(bundle.name, bundle.x, y, bundle.n_classes, bundle.mean, bundle.std)
    return b, y[idx]


def run_dp_audit(ctx: AttackContext) -> AttackResult:
    cfg, a = ctx.cfg, ctx.cfg.attack
    dc = a.dp_audit
    seed = int(cfg.seed)
    m = int(dc.canaries)
    pool = np.asarray(ctx.split.shadow, dtype=np.int64)
    if m > pool.size:
        raise ConfigError(
            f"attack.dp_audit.canaries must be <= {pool.size} (split.shadow points), got {m}"
        )
    rng = np.random.default_rng((seed, 0xCA7))
    canaries = np.sort(rng.choice(pool, m, replace=False))
    included = rng.random(m) < 0.5
    bundle, y_can = canary_bundle(ctx.bundle, canaries, str(dc.kind), seed)
    train_idx = np.sort(np.r_[np.asarray(ctx.split.members, np.int64), canaries[included]])
    fcfg = training.with_epochs(cfg, dc.epochs)
    model = training.fit_target(fcfg, bundle, train_idx, None, seed=seed + 0xA0D)
    with torch.no_grad():
        logits = torch.cat(
            [model(bundle.x[canaries[i : i + 500]]) for i in range(0, m, 500)]
        ).double()
    loss = torch.nn.functional.cross_entropy(logits, y_can, reduction="none").numpy()
    scores = -loss
    delta = float(cfg.target.dp_delta)
    alpha = float(a.alpha)
    out = configured_metrics(a, seed, scores, included.astype(int))
    correct, guesses = one_run_guesses(scores, included, float(dc.guess_fraction))
    out.update(
        eps_cp=split_cp_eps(scores, included, alpha, delta, seed),
        eps_one_run=one_run_eps(correct, guesses, alpha, delta, m),
        one_run_correct=float(correct),
        one_run_guesses=float(guesses),
        canaries=float(m),
        canaries_in=float(included.sum()),
        audit_train_acc=float(
            (logits.argmax(1) == y_can)[torch.as_tensor(included)].float().mean()
        ),
    )
    eps_acc = getattr(model, "dp_epsilon", None)
    if eps_acc is not None and math.isfinite(eps_acc):
        out["dp_epsilon"] = float(eps_acc)
    summary = {k: out[k] for k in ("eps_cp", "eps_one_run", "auc")} | {
        "dp_epsilon": out.get("dp_epsilon"),
        "delta": delta,
        "alpha": alpha,
        "kind": str(dc.kind),
    }
    return AttackResult(
        out,
        scores=scores,
        is_member=included.astype(int),
        losses=loss,
        index=canaries,
        texts={"dp_audit/summary.json": json.dumps(summary, indent=2) + "\n"},
    )


def check_dp_audit(cfg: DictConfig) -> None:
    """Bad audit settings -> ConfigError naming the key, before anything trains."""
    dc = cfg.attack.dp_audit
    if dc.kind not in CANARY_KINDS:
        raise unknown_name("attack.dp_audit.kind", dc.kind, CANARY_KINDS)
    n = min(int(cfg.data.n_members), int(cfg.data.n_shadow))
    require(2 <= dc.canaries <= n, "attack.dp_audit.canaries",
            f"in [2, {n}] (at most the training set, data.n_members, and data.n_shadow)",
            dc.canaries)  # fmt: skip
    require(0 < dc.guess_fraction <= 1, "attack.dp_audit.guess_fraction", "in (0, 1]",
            dc.guess_fraction)  # fmt: skip
    require(dc.epochs is None or dc.epochs >= 1, "attack.dp_audit.epochs", ">= 1 or null",
            dc.epochs)  # fmt: skip


__all__ = [
    "DpAuditSettings",
    "one_run_eps",
    "one_run_guesses",
    "run_dp_audit",
    "split_cp_eps",
]
