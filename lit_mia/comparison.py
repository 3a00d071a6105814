"""Comparison across the targets of one experiment: the markdown table printed after a run and
logged as `comparison.md`, the parent run's flattened metrics and its plots.

Pure functions of `tracking.TargetResult`s and resolved configs; `log_parent` hands the results
to the tracking layer (the only one that talks to MLflow).
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig, OmegaConf

from lit_mia import plots
from lit_mia.metrics import keys
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
    parent.log_text(comparison_table(results, attacks), "comparison.md")
    flat = {f"{metric_key(t)}/{k}": v for t, r in results.items() for k, v in r.metrics.items()}
    parent.log_metrics(flat)
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


__all__ = ["compare_plot", "comparison_table", "label_of", "log_parent", "metric_key"]
