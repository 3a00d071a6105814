"""The reference-budget curve (`ref_budget`): RMIA and LiRA, online and offline, with 1, 2, 4,
... up to N reference models drawn from one farm (models/reference_models.py), the comparison
of Zarifzadeh et al. ICML 2024 (Fig. 1 / Table 2: RMIA with 1-2 references beats LiRA with few).

Every method at budget k uses the farm's first k models (the balanced keep matrix's rows:
k = 1 is half of a complementary pair, so every candidate is IN or OUT of it). Where a method
cannot run at a budget it is NaN there: LiRA online needs an IN and an OUT model per candidate
and LiRA / RMIA offline an OUT model, i.e. k >= 2. RMIA offline's `a` is `attack.rmia.a`, or
when null chosen once on the full N-model farm (reference 0 as stand-in target, rmia.choose_a),
and then used at every budget. LiRA uses `attack.lira.fix_variance` and `augment`; RMIA its
`gamma`, `population`, `augment`.

Logged: series `<method>/auc`, `<method>/tpr_at_fpr_0.001`, `<method>/tpr_at_fpr_0.01` and
`budget` (step = position in the budget list), so MLflow shows
`attack/ref_budget/rmia_online/auc` by budget; `ref_budget/curve.csv`; one figure with AUC and
TPR at 0.1% FPR against the budget.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from lit_mia import metrics, plots
from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.lira import check_lira, lira_scores, phi_from_logits, shadow_phi
from lit_mia.attacks.rmia import MAX_REFERENCES, check_rmia, choose_a, rmia_inputs, scores_for
from lit_mia.attacks.settings import RefBudgetSettings
from lit_mia.errors import require
from lit_mia.models.reference_models import farm_logits, reference_farm, target_view_logits
from lit_mia.training import label_of, subset

METHODS = ("rmia_online", "rmia_offline", "lira_online", "lira_offline")
LEVELS = (0.01, 0.001)


def budgets(n: int) -> list[int]:
    """1, 2, 4, ... below n, then n."""
    out, k = [], 1
    while k < n:
        out.append(k)
        k *= 2
    return [*out, n]


def run_ref_budget(ctx: AttackContext) -> AttackResult:
    cfg = ctx.cfg
    rc, lc = cfg.attack.rmia, cfg.attack.lira
    n = int(cfg.attack.ref_budget.max_references)
    seed = int(cfg.seed)
    is_member = ctx.is_member()
    farm = reference_farm(ctx, n)
    inp = rmia_inputs(ctx, n, int(rc.population), str(rc.augment))
    a = float(rc.a) if rc.a is not None else choose_a(inp.ref_x, inp.keep_x, inp.ref_z,
                                                         float(rc.gamma))[0]  # fmt: skip
    ev = farm.pool[: farm.n_ev]
    _, y_ev = subset(ctx.bundle, ev)
    phi_sh, _ = shadow_phi(farm_logits(ctx, n, ev, str(lc.augment)), y_ev)
    tl = target_view_logits(ctx, ev, str(lc.augment))
    phi_t = phi_from_logits(tl, y_ev[:, None]).numpy()
    keep = farm.keep(n, seed)[:, : farm.n_ev]

    def score(method: str, k: int) -> np.ndarray | None:
        kind, mode = method.split("_")
        if k < 2 and not (kind == "rmia" and mode == "online"):
            return None
        if kind == "rmia":
            return scores_for(inp, k, mode, a, float(rc.gamma))
        return lira_scores(phi_sh[:k], keep[:k], phi_t, mode, bool(lc.fix_variance))

    ks = budgets(n)
    series: dict[str, list[float]] = {"budget": [float(k) for k in ks]}
    for method in METHODS:
        for key in ("auc", *(f"tpr_at_fpr_{lv}" for lv in LEVELS)):
            series[f"{method}/{key}"] = []
        for k in ks:
            s = score(method, k)
            series[f"{method}/auc"].append(
                float("nan") if s is None else metrics.roc_auc(s, is_member)
            )
            for lv in LEVELS:
                v = float("nan") if s is None else metrics.tpr_at_fpr(s, is_member, lv)
                series[f"{method}/tpr_at_fpr_{lv}"].append(v)
    m = {"max_references": float(n), "rmia_offline_a": a}
    for method in METHODS:  # the full-budget numbers as plain metrics too
        m[f"{method}/auc_at_max"] = series[f"{method}/auc"][-1]
        m[f"{method}/tpr_at_fpr_0.001_at_max"] = series[f"{method}/tpr_at_fpr_0.001"][-1]
    rows = ["budget," + ",".join(k for k in series if k != "budget")]
    for i, k in enumerate(ks):
        rows.append(f"{k}," + ",".join(repr(v[i]) for key, v in series.items() if key != "budget"))
    title = f"{cfg.name}/{label_of(cfg)}: reference budget"
    figs = {
        f"plots/ref_budget_{name}.png": plots.metric_vs(
            ks,
            {me: series[f"{me}/{key}"] for me in METHODS},
            "reference models",
            ylabel,
            title,
            logx=True,
        )
        for name, key, ylabel in (
            ("auc", "auc", "AUC"),
            ("tpr", "tpr_at_fpr_0.001", "TPR at 0.1% FPR"),
        )
    }
    return AttackResult(
        m, figures=figs, texts={"ref_budget/curve.csv": "\n".join(rows) + "\n"}, series=series
    )


def check_ref_budget(cfg: DictConfig) -> None:
    n = cfg.attack.ref_budget.max_references
    require(2 <= n <= MAX_REFERENCES, "attack.ref_budget.max_references",
            f"in [2, {MAX_REFERENCES}]", n)  # fmt: skip
    check_lira(cfg)
    check_rmia(cfg)


__all__ = ["METHODS", "RefBudgetSettings", "budgets", "run_ref_budget"]
