"""Matplotlib figures for attack results; each function returns a Figure and saves nothing.

The caller logs the figure (``mlflow.log_figure``) or saves it, then closes it
(``plt.close(fig)``). The Agg backend is selected at import so figures work without a display.

- ``loss_histogram``: member vs non-member CE-loss distributions (Song et al. DLS'19 Fig. 1,
  CCS'19 Fig. 1 style).
- ``roc_loglog``: ROC curves on log-log axes, low-FPR regime (Carlini et al. S&P 2022 Fig. 1).
- ``comparison_bar``: grouped bars of metrics per target, for sweep/report summaries.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from lit_mia.errors import ConfigError
from lit_mia.metrics import as_scores, auprc, check_scores, pr_curve, roc_auc, roc_curve

MIN_FPR = 1e-4
"""Lower end of the log-log ROC axes, or 1/N (N = non-members) when that is smaller."""


def loss_histogram(
    member_losses: ArrayLike,
    nonmember_losses: ArrayLike,
    bins: int = 50,
    title: str = "",
    xlabel: str = "cross-entropy loss",
) -> Figure:
    """Two overlaid density histograms of the CE loss on shared equal-width bins.

    Same binning as ``metrics.loss_kl`` (``bins`` over the pooled [min, max]), each histogram
    normalised to unit area so sets of different sizes compare. Linear axes.
    """
    a = as_scores(member_losses, "member_losses")
    b = as_scores(nonmember_losses, "nonmember_losses")
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    if lo == hi:  # all equal: give the single bar some width
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, int(bins) + 1)
    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    ax.hist(a, bins=edges, density=True, alpha=0.5, color="tab:red", label="members")
    ax.hist(b, bins=edges, density=True, alpha=0.5, color="tab:blue", label="non-members")
    ax.set_xlabel("cross-entropy loss" if xlabel == "loss" else xlabel)
    ax.set_ylabel("density")
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


def roc_loglog(curves: dict[str, tuple[ArrayLike, ArrayLike]], title: str = "") -> Figure:
    """ROC curves on log-log axes with the chance diagonal; legend entries carry the AUC.

    ``curves`` maps a label to ``(scores, is_member)`` (members positive, higher score = member).
    Axes span [lo, 1] with lo = min(1e-4, 1/N over the curves); zero rates are drawn at lo.
    """
    if not curves:
        raise ConfigError("roc_loglog needs at least one curve")
    checked = {name: check_scores(s, m) for name, (s, m) in curves.items()}
    rocs = {name: roc_curve(s, m) for name, (s, m) in checked.items()}
    aucs = {name: roc_auc(s, m) for name, (s, m) in checked.items()}
    n_neg = max(int(np.sum(~m)) for _, m in checked.values())
    lo = min(MIN_FPR, 1.0 / n_neg)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
    for name, (fpr, tpr, _) in rocs.items():
        ax.plot(np.clip(fpr, lo, 1), np.clip(tpr, lo, 1), label=f"{name} (AUC={aucs[name]:.3f})")
    ax.plot([lo, 1], [lo, 1], ls="--", color="gray", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, 1)
    ax.set_ylim(lo, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def pr_curves(curves: dict[str, tuple[ArrayLike, ArrayLike]], title: str = "") -> Figure:
    """Precision-recall curves (members positive), one per attack; legend entries carry the
    AUPRC (average precision); the dotted line is the member fraction (chance)."""
    fig, ax = plt.subplots(figsize=(5, 4), layout="constrained")
    base = None
    for label, (scores, is_member) in curves.items():
        s, m = check_scores(scores, is_member)
        precision, recall = pr_curve(s, m)
        ax.step(recall, precision, where="post", label=f"{label} (AP {auprc(s, m):.3f})")
        base = float(m.mean())
    if base is not None:
        ax.axhline(base, color="grey", ls=":", lw=1)
    ax.set_xlabel("recall (TPR)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def metric_vs(
    x: ArrayLike,
    curves: dict[str, ArrayLike],
    xlabel: str,
    ylabel: str = "",
    title: str = "",
    logx: bool = False,
) -> Figure:
    """Line plot (markers) of one or more metric series against shared x values."""
    xs = np.asarray(x, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    for label, ys in curves.items():
        ax.plot(xs, np.asarray(ys, dtype=float), marker="o", label=label)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def leakage_curves(history: list[dict[str, float]], title: str = "") -> Figure:
    """Leakage over training (CCS'19 Fig. 3/4): inference accuracy of I_B / I_A (left) and
    benign / PGD accuracy on members and non-members (right) against the epoch."""
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    for key, label in (("leakage/ib/acc_best", "I_B"), ("leakage/ia/acc_best", "I_A")):
        a1.plot(ep, [h[key] for h in history], marker="o", label=label)
    a1.set_ylabel("inference accuracy (oracle threshold)")
    for key, label in (
        ("leakage/train_acc", "train"),
        ("leakage/test_acc", "test"),
        ("leakage/adv_train_acc", "adv-train"),
        ("leakage/adv_test_acc", "adv-test"),
    ):
        a2.plot(ep, [h[key] for h in history], marker=".", label=label)
    a2.set_ylabel("accuracy")
    for ax in (a1, a2):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def comparison_bar(
    table: dict[str, dict[str, float]], metric_keys: list[str], title: str = ""
) -> Figure:
    """Grouped bars: one group per row of ``table`` (a target), one bar per metric key.

    A metric missing from a row is drawn as no bar (NaN); a key missing from every row is an
    error (likely a typo).
    """
    if not table or not metric_keys:
        raise ConfigError("comparison_bar needs a non-empty table and metric_keys")
    absent = [k for k in metric_keys if not any(k in row for row in table.values())]
    if absent:
        raise ConfigError(f"metric keys in no row of the table: {absent}")
    rows = list(table)
    x = np.arange(len(rows))
    width = 0.8 / len(metric_keys)
    fig, ax = plt.subplots(
        figsize=(max(4.0, 1.0 + 0.6 * len(rows) * len(metric_keys)), 3.5), layout="constrained"
    )
    for j, key in enumerate(metric_keys):
        vals = [float(table[r].get(key, np.nan)) for r in rows]
        ax.bar(x + (j - (len(metric_keys) - 1) / 2) * width, vals, width, label=key)
    ax.set_xticks(
        x, rows, rotation=30 if len(rows) > 4 else 0, ha="right" if len(rows) > 4 else "center"
    )
    ax.set_ylabel("value")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig
