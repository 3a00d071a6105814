"""Per-slice metrics of a membership attack's result (metrics/slicing.py) on its target:
slices by the true class and by whether the target classifies the sample correctly
(`attack.slicing`, default both; `attack.slice_min` members and non-members at least, else the
slice is reported too small), with bootstrap CIs (`attack.bootstrap`), plus one figure per
attack (`plots/<name>_slices.png`: AUC per slice with its interval; too-small slices marked).

`with_slices(ctx, name, result)` is applied by run.evaluate to every membership and label-only
attack whose per-sample scores cover the context's evaluation set in its order (members, then
non-members: every attack of the registry does); other results pass unchanged.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from lit_mia.attacks.base import LABEL_ONLY, MEMBERSHIP, AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.metrics.slicing import slice_masks, slice_metrics, slice_table


def target_correct(ctx: AttackContext) -> np.ndarray:
    """Whether the target's benign prediction is right, members then non-members."""
    out = []
    for name in ("members", "nonmembers"):
        out.append((ctx.pred.logits(name).argmax(1) == ctx.pred.labels(name)).numpy())
    return np.concatenate(out)


def slice_figure(metrics: dict[str, float], title: str) -> Figure:
    """AUC per slice (horizontal bars with bootstrap intervals), too-small slices as text."""
    rows = slice_table(metrics)
    fig = Figure(figsize=(5, 0.3 * len(rows) + 1.2), layout="constrained")
    ax = fig.subplots()
    for i, (_, auc, lo, hi) in enumerate(rows):
        if auc is None:
            ax.text(0.5, i, "too small", va="center", ha="center", color="grey", fontsize=8)
            continue
        err = None
        if np.isfinite(lo) and np.isfinite(hi):
            err = [[max(auc - lo, 0.0)], [max(hi - auc, 0.0)]]
        ax.barh(i, auc - 0.5, left=0.5, xerr=err, color="tab:blue", alpha=0.7)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    ax.axvline(0.5, color="k", lw=0.8)
    ax.set_xlim(0.0, 1.0)
    ax.invert_yaxis()
    ax.set_xlabel("AUC (0.5 = chance)")
    ax.set_title(title, fontsize=9)
    return fig


def with_slices(ctx: AttackContext, name: str, res: AttackResult, kind: str) -> AttackResult:
    """`res` with `slice/...` metrics and its slice figure added (see the module docstring)."""
    if kind not in (MEMBERSHIP, LABEL_ONLY) or res.scores is None:
        return res
    a = ctx.cfg.attack
    kinds = list(a.get("slicing", []) or [])
    if not kinds:
        return res
    is_member = np.asarray(res.is_member)
    if is_member.shape != (2 * ctx.n_eval,) or not np.array_equal(is_member, ctx.is_member()):
        return res  # scores over another set: slices of ctx's evaluation set do not apply
    labels = np.r_[ctx.pred.labels("members").numpy(), ctx.pred.labels("nonmembers").numpy()]
    correct = target_correct(ctx) if "correctness" in kinds else None
    masks = slice_masks(kinds, labels, correct, n=len(labels))
    m = slice_metrics(
        res.scores,
        is_member,
        masks,
        min_size=int(a.slice_min),
        bootstrap=int(a.bootstrap),
        ci_level=float(a.ci_level),
        seed=int(ctx.cfg.seed),
    )
    res.metrics.update(m)
    res.figures[f"plots/{name}_slices.png"] = slice_figure(m, f"{name}: AUC per slice")
    return res


__all__ = ["slice_figure", "target_correct", "with_slices"]
