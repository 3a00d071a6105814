"""Comparison across the targets of one experiment: the markdown table printed after a run and
logged as `comparison.md`, the paired comparison of every target against the first (the
reference, e.g. natural against PGD: `paired_keys`, metrics/paired.py), the parent run's
flattened metrics and its plots.

Pure functions of `tracking.TargetResult`s and resolved configs; `log_parent` hands the results
to the tracking layer (the only one that talks to MLflow).
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig, OmegaConf

from lit_mia import plots
from lit_mia.metrics import keys
from lit_mia.metrics.paired import align, compare_attacks
from lit_mia.tracking import Run, TargetResult
from lit_mia.training import label_of


def metric_key(label: str) -> str:
    """A target label as an MLflow-legal metric prefix: `pgd ratio=0.5` -> `pgd ratio_0.5`."""
    return keys.label(label)


def comparison_table(results: dict[str, TargetResult], attacks: list[str]) -> str:
    """Markdown table: target accuracy and each attack's inference accuracy per target (columns
    of metrics no target has, e.g. ia_sweep's per-eps series, are left out). An update-leakage
    run (no target metrics) is listed as attack metric | value."""
    if all(not k.startswith("target/") for r in results.values() for k in r.metrics):
        rows = [
            f"| {k} | {v:.4f} |"
            for r in results.values()
            for k, v in sorted(r.metrics.items())
            if keys.is_attack(k)
        ]
        return "\n".join(["| metric | value |", "|---|---|", *rows])
    cols = [
        ("train", "target/train_acc"),
        ("test", "target/test_acc"),
        ("adv-train", "target/adv_train_acc"),
        ("adv-test", "target/adv_test_acc"),
    ]
    if any("target/ver_train_acc" in r.metrics for r in results.values()):
        cols += [("ver-train", "target/ver_train_acc"), ("ver-test", "target/ver_test_acc")]
    for a in attacks:
        cols += [
            (f"{a} acc", keys.attack(a, "acc_best")),
            (f"{a} calib", keys.attack(a, "acc_calibrated")),
            (f"{a} auc", keys.attack(a, "auc")),
        ]
    present = {k for r in results.values() for k in r.metrics}
    cols = [(c, k) for c, k in cols if k in present or k.startswith("target/")]
    head = "| target | " + " | ".join(c for c, _ in cols) + " |"
    sep = "|---" * (len(cols) + 1) + "|"
    rows = []
    for t, r in results.items():
        vals = [f"{r.metrics[k]:.3f}" if k in r.metrics else "-" for _, k in cols]
        rows.append(f"| {t} | " + " | ".join(vals) + " |")
    return "\n".join([head, sep, *rows])


MIN_PAIRED = 10
"""Fewest common members (and non-members) for a paired comparison of two targets."""


def paired_keys(
    results: dict[str, TargetResult], level: float = 0.95, seed: int = 0
) -> dict[str, dict[str, float]]:
    """target label -> its `compare/<target>/<reference>/<attack>/<metric>` metrics against
    the reference (the first target with scores), for every attack both scored, on the
    samples both scored in the same role (at least MIN_PAIRED of each), Bonferroni over those
    attacks (metrics/paired.compare_attacks). {} with fewer than two scored targets."""
    scored = [label for label, r in results.items() if r.scores]
    if len(scored) < 2:
        return {}
    ref = results[scored[0]]
    out: dict[str, dict[str, float]] = {}
    for label in scored[1:]:
        other = results[label]
        pairs = {}
        for name in (a for a in ref.scores if a in other.scores):
            xa, xb, m = align(*ref.scores[name], *other.scores[name])
            if min(int(m.sum()), int((~m).sum())) >= MIN_PAIRED:
                pairs[name] = (xa, xb, m)
        per = compare_attacks(pairs, level, seed=seed)
        out[label] = {
            keys.compare(label, ref.name, a, k): v for a, r in per.items() for k, v in r.items()
        }
    return out


PAIRED_COLUMNS = (
    ("ΔAUC", "delta_auc"),
    ("simultaneous 95% CI", ("delta_auc_simultaneous_ci_low", "delta_auc_simultaneous_ci_high")),
    ("p (Bonferroni)", "delta_auc_p_adjusted"),
    ("ΔTPR@1%", "delta_tpr_at_fpr_0.01"),
    ("95% CI", ("delta_tpr_at_fpr_0.01_ci_low", "delta_tpr_at_fpr_0.01_ci_high")),
    ("p (Bonferroni)", "delta_tpr_at_fpr_0.01_p_adjusted"),
)


def paired_table(compared: dict[str, dict[str, float]]) -> str:
    """Markdown: per target and attack, ΔAUC against the reference with its simultaneous
    interval and adjusted p, and ΔTPR@1% with its interval and adjusted p ("" when none)."""
    rows = []
    for m in compared.values():
        for t, r, a, metric in filter(None, map(keys.split_compare, sorted(m))):
            if metric != "delta_auc":
                continue
            cells = []
            for _, col in PAIRED_COLUMNS:
                if isinstance(col, tuple):
                    lo, hi = (m[keys.compare(t, r, a, c)] for c in col)
                    cells.append(f"[{lo:+.3f}, {hi:+.3f}]")
                else:
                    v = m[keys.compare(t, r, a, col)]
                    cells.append(f"{v:.2g}" if col.endswith("_p_adjusted") else f"{v:+.3f}")
            rows.append(f"| {t} vs {r} | {a} | " + " | ".join(cells) + " |")
    if not rows:
        return ""
    head = "| target vs reference | attack | " + " | ".join(h for h, _ in PAIRED_COLUMNS) + " |"
    return "\n".join([head, "|---" * (len(PAIRED_COLUMNS) + 2) + "|", *rows])


def compare_plot(cfgs: list[DictConfig], results: dict[str, TargetResult], attacks: list[str]):
    """Each attack's AUC against the experiment's `compare_by` key, one point per target
    (e.g. AUC vs training-set size for a target ladder, Li & Zhang CCS'21 Fig. 10)."""
    key = str(cfgs[0].compare_by)
    xs = [float(OmegaConf.select(c, key)) for c in cfgs]
    order = np.argsort(xs)
    curves = {}
    for a in attacks:
        ys = [results[label_of(c)].metrics.get(keys.attack(a, "auc"), np.nan) for c in cfgs]
        curves[a] = [ys[i] for i in order]
    return plots.metric_vs(
        [xs[i] for i in order], curves, xlabel=key, ylabel="attack AUC", title=str(cfgs[0].name)
    )


def log_parent(parent: Run, cfgs: list[DictConfig], results: dict[str, TargetResult]) -> None:
    """The parent run of a multi-target experiment: comparison.md, every child's metrics
    prefixed by its label, the oracle-accuracy bar chart and the `compare_by` plot."""
    base = cfgs[0]
    attacks = list(base.attacks)
    compared = paired_keys(results, float(base.attack.ci_level), int(base.seed))
    for label, m in compared.items():
        results[label].compared = m
    table = comparison_table(results, attacks)
    paired = paired_table(compared)
    parent.log_text(table + ("\n\n" + paired if paired else ""), "comparison.md")
    flat = {f"{metric_key(t)}/{k}": v for t, r in results.items() for k, v in r.metrics.items()}
    parent.log_metrics(flat)
    for m in compared.values():
        parent.log_metrics(m)
    bar_keys = [
        k
        for k in (keys.attack(a, "acc_best") for a in attacks)
        if any(k in r.metrics for r in results.values())
    ]
    if bar_keys:
        parent.log_figure(
            plots.comparison_bar(
                {t: r.metrics for t, r in results.items()},
                bar_keys,
                title="membership inference accuracy (oracle threshold)",
            ),
            "plots/comparison.png",
        )
    if base.compare_by:
        parent.log_figure(compare_plot(cfgs, results, attacks), "plots/compare_by.png")


def roc_figures(curves: dict, title: str) -> dict:
    """The overlaid log-log ROC and PR curves of every scored attack of one target."""
    return {
        "plots/roc_loglog.png": plots.roc_loglog(curves, title=title),
        "plots/pr_curve.png": plots.pr_curves(curves, title=title),
    }


__all__ = [
    "compare_plot",
    "comparison_table",
    "label_of",
    "log_parent",
    "metric_key",
    "paired_keys",
    "paired_table",
]
