"""The numbers a reader needs first, and what they mean in plain words.

`headline(t)`: per target its benign train/test accuracy with exact binomial 95% intervals
(Clopper–Pearson on the evaluation members / non-members), the strongest attack with its AUC
and TPR at 1% and 0.1% FPR, the ε lower bound (`eps_lb`) where the attack logged one, and the
same attack against the placebo model (`placebo/<attack>/*`, attacks/placebo.py).

The strongest attack is the largest AUC among the k attacks with per-sample scores, and its
AUC interval is DeLong's at level 1 - 0.05/k (Bonferroni, metrics/delong.py `strongest`): the
k intervals hold jointly at 95%, so picking the maximum after seeing the data keeps the
interval's confidence (the naive maximum's own 95% interval claims leakage in ~22% of
no-signal runs with 10 attacks; tests/metrics/test_delong.py).

`sentence` reads one headline in words; `paired_sentences` says, from the logged paired
comparison (`compare/...`, metrics/paired.py), whether each target leaks more than the
reference target, with ΔAUC, its simultaneous interval and a Bonferroni p-value;
`placebo_warnings` names every attack whose placebo is not at chance. `comparison` is the
fallback for runs logged before the paired comparison existed. `pareto` marks the
non-dominated sweep trials (Optuna's multi-objective sense).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lit_mia.metrics import keys as metric_keys
from lit_mia.metrics.delong import strongest as strongest_of
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
    n_compared: int = 0  # attacks the strongest was chosen from (Bonferroni k); 0: uncorrected
    placebo: Number | None = None  # the same attack against the placebo model
    placebo_off: bool = False  # some placebo attack is not at chance


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


def scored(t: TargetData) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """attack -> (scores, is_member) of the attacks with per-sample scores of both classes."""
    return {
        a: (d.scores, d.is_member)
        for a, d in t.attacks.items()
        if d.scores is not None and min(int(d.is_member.sum()), int((1 - d.is_member).sum())) >= 2
    }


def strongest(t: TargetData) -> tuple[str, dict[str, float] | None] | None:
    """(attack, its simultaneous DeLong interval over the scored attacks) with the largest AUC
    among the attacks with per-sample scores; without any, (largest logged AUC, None): an
    uncorrected pick the report marks as such. None when no attack logged an AUC."""
    picked = strongest_of(scored(t), LEVEL)
    if picked is not None:
        return picked
    aucs = {a: d.metrics["auc"] for a, d in t.attacks.items() if "auc" in d.metrics}
    return (max(aucs, key=aucs.get), None) if aucs else None


def placebo_number(t: TargetData, attack: str) -> Number | None:
    key = metric_keys.placebo(attack, "auc")
    if key not in t.metrics:
        return None
    m = t.metrics
    return Number(key, m[key], m.get(metric_keys.placebo(attack, "auc_ci_low")),
                  m.get(metric_keys.placebo(attack, "auc_ci_high")))  # fmt: skip


def headline(t: TargetData) -> Headline:
    accs = []
    for key, name in (("target/train_acc", "train acc"), ("target/test_acc", "test acc")):
        if key in t.metrics:
            lo, hi = binomial_ci(t.metrics[key], t.n_eval)
            accs.append((name, Number(key, t.metrics[key], lo, hi)))
    picked = strongest(t)
    a, sim = picked if picked else (None, None)
    auc = attack_number(t, a, "auc") if a else None
    if auc is not None:  # the interval that survives the selection, or none at all
        auc.low, auc.high = (sim["auc_ci_low"], sim["auc_ci_high"]) if sim else (None, None)
    tpr1 = attack_number(t, a, "tpr_at_fpr_0.01") if a else None
    tpr01 = attack_number(t, a, "tpr_at_fpr_0.001") if a else None
    eps = attack_number(t, a, "eps_lb") if a else None
    return Headline(
        t.label, t.run.run_id, accs, a, auc, tpr1, tpr01, eps,
        n_compared=len(scored(t)) if sim else 0,
        placebo=placebo_number(t, a) if a else None,
        placebo_off=t.metrics.get(metric_keys.placebo_fact("off_chance")) == 1.0,
    )  # fmt: skip


def _strength(auc: Number) -> str:
    if auc.low is None:
        return "no interval (no per-sample scores were logged), so no claim at a confidence"
    if auc.low <= 0.5 <= (auc.high or 1):
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
    of = f" of {h.n_compared}" if h.n_compared > 1 else ""
    interval = (
        f" [{h.auc.low:.3f}, {h.auc.high:.3f}]" if h.auc.low is not None and h.auc.high else ""
    )
    placebo = ""
    if h.placebo is not None:
        at = "NOT at chance" if h.placebo_off else "at chance"
        placebo = f" Against the placebo model it scores AUC {h.placebo.value:.3f} ({at})."
    return (
        f"{h.label}: the strongest attack{of} ({h.attack}) tells training members from "
        f"non-members with AUC {h.auc.value:.3f}{interval} (0.5 = guessing){tpr}: "
        f"{_strength(h.auc)}.{placebo}"
    )


def placebo_warnings(label: str, m: dict[str, float]) -> list[str]:
    """One warning per placebo attack of target `label` that is not at chance (from its
    logged metrics `m`: `placebo/<attack>/off_chance`); [] when it is, or no placebo ran."""
    lines = []
    for k, v in sorted(m.items()):
        part = metric_keys.split_placebo(k)
        if part is None or part[1] != "off_chance" or v != 1.0:
            continue
        name = part[0]
        auc, lo, hi = (m[metric_keys.placebo(name, x)] for x in ("auc", "auc_ci_low",
                                                                   "auc_ci_high"))  # fmt: skip
        lines.append(
            f"WARNING {label}: attack {name} against the placebo (shadow model 0, never trained "
            f"on the evaluation members) gives AUC {auc:.3f} [{lo:.3f}, {hi:.3f}], not chance: "
            "members and non-members differ beyond membership, so the target's number is not "
            "membership leakage alone"
        )
    return lines


def paired_sentences(m: dict[str, float]) -> list[str]:
    """Per (target, reference) pair in the `compare/...` metrics `m`: whether the target leaks
    more than the reference, on the attack with the smallest Bonferroni-adjusted ΔAUC p-value,
    with ΔAUC, its simultaneous interval, the p-value and ΔTPR at 1% FPR."""
    by_pair: dict[tuple[str, str], set[str]] = {}
    for part in filter(None, map(metric_keys.split_compare, m)):
        by_pair.setdefault((part[0], part[1]), set()).add(part[2])
    out = []
    for (t, r), attacks in by_pair.items():

        def g(a: str, metric: str, t=t, r=r) -> float:
            return m[metric_keys.compare(t, r, a, metric)]

        a = min(sorted(attacks), key=lambda x: g(x, "delta_auc_p_adjusted"))
        d, p = g(a, "delta_auc"), g(a, "delta_auc_p_adjusted")
        lo, hi = g(a, "delta_auc_simultaneous_ci_low"), g(a, "delta_auc_simultaneous_ci_high")
        k = len(attacks)
        ks = f"Bonferroni over {k} attacks" if k > 1 else "one attack"
        how = (
            f"ΔAUC {d:+.3f} with attack {a}, 95% interval [{lo:+.3f}, {hi:+.3f}], p = {p:.2g} "
            f"(DeLong paired test on the same {g(a, 'n_members'):.0f} members and "
            f"{g(a, 'n_nonmembers'):.0f} non-members, {ks})"
        )
        tpr = "delta_tpr_at_fpr_0.01"
        how += (
            f"; ΔTPR at 1% FPR {g(a, tpr):+.3f} [{g(a, tpr + '_ci_low'):+.3f}, "
            f"{g(a, tpr + '_ci_high'):+.3f}], p = {g(a, tpr + '_p_adjusted'):.2g} "
            "(paired bootstrap)"
        )
        if lo > 0:
            out.append(f"{t} leaks more membership than {r}: {how}.")
        elif hi < 0:
            out.append(f"{t} leaks less membership than {r}: {how}.")
        else:
            out.append(
                f"This run cannot tell whether {t} leaks more membership than {r} (the "
                f"interval contains 0): {how}."
            )
    return out


def comparison(heads: list[Headline]) -> str | None:
    """Fallback for runs without a logged paired comparison: which target leaks most, and
    whether the separate AUC intervals overlap (not a test of the difference)."""
    scored = [h for h in heads if h.auc is not None]
    if len(scored) < 2:
        return None
    hi = max(scored, key=lambda h: h.auc.value)
    lo = min(scored, key=lambda h: h.auc.value)
    if hi is lo or hi.auc.value == lo.auc.value:
        return "All targets leak equally (same AUC)."
    apart = hi.auc.low is not None and lo.auc.high is not None and hi.auc.low > lo.auc.high
    verdict = (
        "and their AUC intervals do not overlap" if apart else "but their AUC intervals overlap"
    )
    return (
        f"{hi.label} leaks the most (AUC {hi.auc.value:.3f}) and {lo.label} the least "
        f"(AUC {lo.auc.value:.3f}), {verdict}; this run logged no paired comparison, and "
        "separate intervals do not test the difference."
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


__all__ = [
    "Headline",
    "Number",
    "comparison",
    "headline",
    "paired_sentences",
    "pareto",
    "placebo_warnings",
    "sentence",
    "strongest",
]
