"""The numbers a reader needs first, and what they mean in plain words.

`headline(t)`: per target its benign train/test accuracy with exact binomial 95% intervals
(Clopper–Pearson on the evaluation members / non-members), the strongest attack (largest AUC)
with its AUC and TPR at 1% and 0.1% FPR and their logged bootstrap intervals, and the ε lower
bound (`eps_lb`, Jagielski et al. NeurIPS 2020) where the attack logged one. `sentence` reads
one headline in words; `comparison` says whether the targets differ beyond their intervals.
`pareto` marks the non-dominated sweep trials (Optuna's multi-objective sense).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lit_mia.metrics import keys as metric_keys
from lit_mia.metrics.privacy import clopper_pearson_lower, clopper_pearson_upper
from lit_mia.report_html.collect import TargetData
from lit_mia.tracking import StoredRun

LEVEL = 0.95


@dataclass
class Number:
    """A logged metric with its interval (None where none was logged)."""

    key: str  # the MLflow metric key
    value: float
    low: float | None = None
    high: float | None = None


@dataclass
class Headline:
    label: str
    run_id: str
    accuracies: list[tuple[str, Number]]
    attack: str | None
    auc: Number | None
    tpr_1: Number | None
    tpr_01: Number | None
    eps_lb: Number | None


def binomial_ci(p: float, n: int | None) -> tuple[float | None, float | None]:
    """Two-sided Clopper–Pearson interval of a rate p measured on n samples."""
    if n is None or n < 1 or not math.isfinite(p):
        return None, None
    k = int(round(p * n))  # noqa: RUF046 (p may be a numpy float)
    a = (1 - LEVEL) / 2
    return float(clopper_pearson_lower(k, n, a)), float(clopper_pearson_upper(k, n, a))


def attack_number(t: TargetData, attack: str, metric: str) -> Number | None:
    m = t.attacks[attack].metrics
    if metric not in m:
        return None
    key = metric_keys.attack(attack, metric)
    return Number(key, m[metric], m.get(f"{metric}_ci_low"), m.get(f"{metric}_ci_high"))


def strongest(t: TargetData) -> str | None:
    """The attack with the largest AUC (None when no attack logged one)."""
    aucs = {a: d.metrics["auc"] for a, d in t.attacks.items() if "auc" in d.metrics}
    return max(aucs, key=aucs.get) if aucs else None


def headline(t: TargetData) -> Headline:
    accs = []
    for key, name in (("target/train_acc", "train acc"), ("target/test_acc", "test acc")):
        if key in t.metrics:
            lo, hi = binomial_ci(t.metrics[key], t.n_eval)
            accs.append((name, Number(key, t.metrics[key], lo, hi)))
    a = strongest(t)
    nums = [attack_number(t, a, k) if a else None for k in ("auc", "tpr_at_fpr_0.01")]
    tpr01 = attack_number(t, a, "tpr_at_fpr_0.001") if a else None
    eps = attack_number(t, a, "eps_lb") if a else None
    return Headline(t.label, t.run.run_id, accs, a, nums[0], nums[1], tpr01, eps)


def _strength(auc: Number) -> str:
    if auc.low is not None and auc.low <= 0.5 <= (auc.high or 1):
        return "no leakage measurable at this sample size (the AUC interval contains 0.5)"
    gap = abs(auc.value - 0.5)
    level = "weak" if gap < 0.1 else "moderate" if gap < 0.25 else "strong"
    return f"{level} membership leakage"


def sentence(h: Headline) -> str:
    """One plain-language reading of a target's headline."""
    if h.auc is None:
        return f"{h.label}: no membership attack with an AUC was logged for this run."
    tpr = ""
    if h.tpr_1 is not None:
        tpr = (
            f"; flagging 1% of non-members by mistake, it finds {100 * h.tpr_1.value:.1f}% "
            "of the members"
        )
    return (
        f"{h.label}: the strongest attack ({h.attack}) tells training members from "
        f"non-members with AUC {h.auc.value:.3f} (0.5 = guessing){tpr}: {_strength(h.auc)}."
    )


def comparison(heads: list[Headline]) -> str | None:
    """Which target leaks most, and whether the difference exceeds the AUC intervals."""
    scored = [h for h in heads if h.auc is not None]
    if len(scored) < 2:
        return None
    hi = max(scored, key=lambda h: h.auc.value)
    lo = min(scored, key=lambda h: h.auc.value)
    if hi is lo or hi.auc.value == lo.auc.value:
        return "All targets leak equally (same AUC)."
    apart = hi.auc.low is not None and lo.auc.high is not None and hi.auc.low > lo.auc.high
    verdict = (
        "and their AUC intervals do not overlap"
        if apart
        else "but their AUC intervals overlap, so this run cannot tell them apart"
    )
    return (
        f"{hi.label} leaks the most (AUC {hi.auc.value:.3f}) and {lo.label} the least "
        f"(AUC {lo.auc.value:.3f}), {verdict}."
    )


def pareto(trials: list[StoredRun], objectives: list[tuple[str, str]]) -> set[str]:
    """Run ids of the finished trials no other finished trial dominates on `objectives`."""
    if not objectives:
        return set()
    keys = [m for m, _ in objectives]
    sign = np.array([1.0 if d == "maximize" else -1.0 for _, d in objectives])
    done = [t for t in trials if t.status == "FINISHED" and all(k in t.metrics for k in keys)]
    pts = {t.run_id: sign * np.array([t.metrics[k] for k in keys]) for t in done}
    front = set()
    for rid, p in pts.items():
        if not any(np.all(q >= p) and np.any(q > p) for o, q in pts.items() if o != rid):
            front.add(rid)
    return front


__all__ = ["Headline", "Number", "comparison", "headline", "pareto", "sentence", "strongest"]
