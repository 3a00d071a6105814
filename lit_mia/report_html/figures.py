"""Figures the report draws itself (the rest are the PNGs the runs logged), as PNG bytes.

- `roc_all`: the log-log ROC of every attack of every target overlaid (Carlini et al. S&P 2022
  Fig. 1 style, lit_mia.plots.roc_loglog), from the logged per-sample scores;
- `pareto_plot`: sweep trials on two objectives, the Pareto front highlighted, or one
  objective by trial number.
"""

from __future__ import annotations

import base64
import io

from lit_mia import plots
from lit_mia.report_html.collect import TargetData
from lit_mia.tracking import StoredRun


def png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    plt.close(fig)
    return buf.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def roc_all(targets: list[TargetData], title: str) -> bytes | None:
    """One log-log ROC over all (target, attack) pairs with scores; None when there are none."""
    curves = {}
    for t in targets:
        for name, a in t.attacks.items():
            if a.scores is not None and 0 < a.is_member.sum() < len(a.is_member):
                curves[f"{t.label} {name}" if len(targets) > 1 else name] = (a.scores, a.is_member)
    return png(plots.roc_loglog(curves, title=title)) if curves else None


def pareto_plot(
    trials: list[StoredRun], objectives: list[tuple[str, str]], front: set[str]
) -> bytes | None:
    """Two objectives: a scatter with the front in red; one: the objective per trial."""
    import matplotlib.pyplot as plt

    keys = [m for m, _ in objectives]
    done = [t for t in trials if all(k in t.metrics for k in keys)]
    if not done or len(keys) > 2:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.8), layout="constrained")
    if len(keys) == 2:
        for t in done:
            on = t.run_id in front
            x, y = t.metrics[keys[0]], t.metrics[keys[1]]
            ax.scatter(x, y, color="tab:red" if on else "tab:gray", zorder=3 if on else 2)
            ax.annotate(t.name.rsplit("/", 1)[-1], (x, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
        pts = sorted((t.metrics[keys[0]], t.metrics[keys[1]]) for t in done if t.run_id in front)
        if len(pts) > 1:
            ax.plot(*zip(*pts, strict=True), color="tab:red", lw=1)
        ax.set_xlabel(f"{keys[0]} ({objectives[0][1]})")
        ax.set_ylabel(f"{keys[1]} ({objectives[1][1]})")
        ax.set_title("sweep trials; red: Pareto front")
    else:
        xs = range(len(done))
        ax.bar(xs, [t.metrics[keys[0]] for t in done],
               color=["tab:red" if t.run_id in front else "tab:gray" for t in done])  # fmt: skip
        ax.set_xticks(list(xs), [t.name.rsplit("/", 1)[-1] for t in done], rotation=45)
        ax.set_ylabel(f"{keys[0]} ({objectives[0][1]})")
        ax.set_title("sweep trials; red: best")
    return png(fig)


__all__ = ["data_uri", "pareto_plot", "png", "roc_all"]
