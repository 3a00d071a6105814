"""`boundary` (Li & Zhang CCS'21 §4, Algorithm 2): distance to the decision boundary, measured
with label queries only, as the membership score.

Each of the first `attack.boundary.n_eval` members and non-members is perturbed by untargeted
HopSkipJump (lit_mia/perturb/hopskipjump.py; released code: ART, norm 2, max_iter 50, max_eval
10000, init_eval 100, init_size 100) within `budget` label queries per sample; member iff the
perturbation norm > tau. Samples the target already misclassifies get distance 0; samples for
which no adversarial point is found are kept with the box-bound distance and counted
(`failures`), never dropped.

Logged: `auc` / `acc_best` / ... of the `score_norm` distance (default L2) and `auc_l0`,
`auc_l1`, `auc_l2`, `auc_linf` (Fig. 8); mean distances of members and non-members (Fig. 7);
`failures`, `misclassified`, `exhausted` (stopped by the budget), query statistics. With
`budgets`, the AUC after at most b queries for each b (Fig. 9), read from the same run:
metrics `auc_budget_<b>`, the step series `auc_vs_budget`, `boundary/budget_sweep.csv` and
`plots/boundary_budget.png`. With `attack.thresholds.n_random` > 0, Algorithm 3
(random_thresholds.py): F1 / accuracy of the threshold from random inputs for each t (Fig. 11) as
`alg3_f1_t<t>`, `alg3_acc_t<t>`, `alg3_tau_t<t>`, series `alg3_f1` / `alg3_acc` and
`boundary/alg3.csv`. No shadow calibration: the boundary adversary has no data (Table 1);
Algorithm 3 is its threshold.
"""

from __future__ import annotations

import numpy as np

from lit_mia import plots
from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.label_only import random_thresholds as thresholds
from lit_mia.attacks.label_only.common import auc, eval_subset, label_result
from lit_mia.attacks.label_only.oracle import LabelOracle
from lit_mia.attacks.label_only.settings import BoundarySettings, ThresholdSettings  # noqa: F401
from lit_mia.errors import ConfigError
from lit_mia.perturb.hopskipjump import (
    ATTACK_NORMS,
    NORMS,
    hopskipjump,
    min_queries,
    parse_norm,
    sample_seeds,
)

NORM_KEYS = {"0": "l0", "1": "l1", "2": "l2", "inf": "linf"}


def hsj_kwargs(b) -> dict:
    return dict(
        norm=parse_norm(b.norm, ATTACK_NORMS, "attack.boundary.norm"),
        max_iter=int(b.max_iter),
        max_eval=int(b.max_eval),
        init_eval=int(b.init_eval),
        init_size=int(b.init_size),
        budget=int(b.budget),
        query_rows=int(b.query_rows),
    )


def run(ctx: AttackContext) -> AttackResult:
    cfg, b = ctx.cfg, ctx.cfg.attack.boundary
    score_norm = parse_norm(b.score_norm, NORMS, "attack.boundary.score_norm")
    sub = eval_subset(ctx, b.n_eval)
    oracle = LabelOracle(ctx.target, len(sub), budget=int(b.budget), batch_size=b.query_rows)
    budgets = sorted({int(v) for v in b.budgets})
    res = hopskipjump(
        oracle,
        sub.x,
        sub.y,
        seeds=sample_seeds(int(cfg.seed), sub.index),
        checkpoints=budgets,
        **hsj_kwargs(b),
    )
    dist = {k: v.numpy() for k, v in res.distances.items()}
    out = label_result(ctx, dist[score_norm], sub)
    mem = sub.is_member == 1
    m = out.metrics
    for k, key in NORM_KEYS.items():
        m[f"auc_{key}"] = auc(dist[k], sub.is_member)
        m[f"mean_{key}_member"] = float(dist[k][mem].mean())
        m[f"mean_{key}_nonmember"] = float(dist[k][~mem].mean())
    m.update(
        {
            "failures": float(res.failures),
            "misclassified": float(res.misclassified),
            "exhausted": float(res.exhausted.sum()),
            "queries_mean": float(res.queries.mean()),
            "queries_max": float(res.queries.max()),
            "iterations_mean": float(res.iterations.mean()),
            "oracle_queries": float(oracle.total),
        }
    )
    if budgets:
        aucs = [auc(res.at_budget[q][score_norm].numpy(), sub.is_member) for q in budgets]
        fails = [int(res.failed_at_budget[q].sum()) for q in budgets]
        for q, a in zip(budgets, aucs):
            m[f"auc_budget_{q}"] = a
        out.series["auc_vs_budget"] = aucs
        out.texts["boundary/budget_sweep.csv"] = "budget,auc,failures\n" + "".join(
            f"{q},{a:.6f},{f}\n" for q, a, f in zip(budgets, aucs, fails)
        )
        out.figures["plots/boundary_budget.png"] = plots.metric_vs(
            budgets,
            {f"L{NORM_KEYS[score_norm][1:]} distance": aucs},
            xlabel="queries per sample",
            ylabel="attack AUC",
            title=f"boundary: AUC vs query budget ({cfg.label or cfg.target.name})",
            logx=True,
        )
    t = cfg.attack.thresholds
    if t.n_random > 0:
        rows = algorithm3(ctx, dist[score_norm], sub.is_member, score_norm)
        for r in rows:
            tag = f"t{r['t']:g}"
            m[f"alg3_f1_{tag}"] = r["f1"]
            m[f"alg3_acc_{tag}"] = r["acc"]
            m[f"alg3_tau_{tag}"] = r["tau"]
        m["alg3_failures"] = rows[0]["failures"] if rows else 0.0
        out.series["alg3_f1"] = [r["f1"] for r in rows]
        out.series["alg3_acc"] = [r["acc"] for r in rows]
        out.texts["boundary/alg3.csv"] = thresholds.table_csv(
            [{k: v for k, v in r.items() if k != "failures"} for r in rows]
        )
    return out


def algorithm3(ctx: AttackContext, scores: np.ndarray, is_member: np.ndarray, score_norm: str):
    """Algorithm 3: HopSkipJump on `n_random` uniform inputs (their own predicted label as y,
    one extra query each), thresholds from the top-t percentiles of their distances."""
    cfg, b, t = ctx.cfg, ctx.cfg.attack.boundary, ctx.cfg.attack.thresholds
    xr = thresholds.random_inputs(t.n_random, ctx.bundle.shape, int(cfg.seed) + 31337)
    oracle = LabelOracle(ctx.target, len(xr), budget=int(b.budget) + 1, batch_size=b.query_rows)
    yr = oracle(xr)
    res = hopskipjump(
        oracle,
        xr,
        yr,
        seeds=sample_seeds(int(cfg.seed) + 31337, range(len(xr))),
        **hsj_kwargs(b),
    )
    rows = thresholds.threshold_table(
        scores, is_member, res.distances[score_norm].numpy(), list(t.percentiles)
    )
    for r in rows:
        r["failures"] = float(res.failures)
    return rows


def check(cfg) -> None:
    b = cfg.attack.boundary
    parse_norm(b.norm, ATTACK_NORMS, "attack.boundary.norm")
    parse_norm(b.score_norm, NORMS, "attack.boundary.score_norm")
    for k in ("max_iter", "init_eval", "init_size", "n_eval", "query_rows"):
        if b[k] < 1:
            raise ConfigError(f"attack.boundary.{k} must be >= 1, got {b[k]}")
    if b.max_eval < b.init_eval:
        raise ConfigError(
            f"attack.boundary.max_eval must be >= init_eval ({b.init_eval}), got {b.max_eval}"
        )
    need = min_queries(b.init_eval)
    if b.budget < need:
        raise ConfigError(
            f"attack.boundary.budget must be >= {need} (HopSkipJump's minimum queries per "
            f"sample with init_eval={b.init_eval}: label check, initial draw, blend search, one "
            f"gradient estimate and one step), got {b.budget}"
        )
    for q in b.budgets:
        if not 1 <= q <= b.budget:
            raise ConfigError(
                f"attack.boundary.budgets entries must be in [1, attack.boundary.budget="
                f"{b.budget}], got {q}"
            )
    t = cfg.attack.thresholds
    if t.n_random < 0:
        raise ConfigError(f"attack.thresholds.n_random must be >= 0, got {t.n_random}")
    thresholds.check_percentiles(t.percentiles)
    if t.n_random > 0 and not len(t.percentiles):
        raise ConfigError("attack.thresholds.percentiles must not be empty when n_random > 0")


__all__ = ["algorithm3", "check", "run"]
