"""Pareto fronts of multi-objective sweeps (pure numpy and matplotlib; no optuna here).

A point is on the front when no other point is at least as good in every objective and
strictly better in one (Deb et al., "A fast and elitist multiobjective genetic algorithm:
NSGA-II", IEEE TEVC 2002, the non-dominated set). The privacy_robustness sweep uses it for the
robustness-vs-leakage trade-off of CCS'19 (Song, Shokri, Mittal, "Privacy Risks of Securing
Machine Learning Models against Adversarial Examples", §5.2): clean and PGD accuracy on the
validation split up, membership leakage down.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask (n,) of the non-dominated rows of `values` (n, k); `directions` are
    "maximize" / "minimize" per column. Equal rows are all kept."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(directions):
        raise ValueError(f"values must be (n, {len(directions)}), got {v.shape}")
    sign = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    g = v * sign  # larger is better in every column
    ge = (g[:, None, :] >= g[None, :, :]).all(-1)  # ge[j, i]: j at least as good as i
    gt = (g[:, None, :] > g[None, :, :]).any(-1)
    dominated = (ge & gt).any(0)
    return ~dominated


def front_table(rows: list[dict[str, Any]], keys: list[str], metrics: list[str]) -> str:
    """Markdown table of the front: trial, params, objective values, MLflow run."""
    head = "| trial | " + " | ".join(keys + metrics) + " | mlflow run |"
    out = [head, "|---" * (len(keys) + len(metrics) + 2) + "|"]
    for r in rows:
        cells = [_fmt(r["params"].get(k)) for k in keys] + [_fmt(x) for x in r["values"]]
        out.append(f"| {r['number']} | " + " | ".join(cells) + f" | {r.get('run_id', '')} |")
    return "\n".join(out)


def front_figure(values: np.ndarray, mask: np.ndarray, metrics: list[str], title: str = ""):
    """2-D projections of every objective pair: all trials, the front highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(itertools.combinations(range(len(metrics)), 2)) or [(0, 0)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.8), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        ax.scatter(values[~mask, i], values[~mask, j], c="0.6", s=18, label="trials")
        ax.scatter(values[mask, i], values[mask, j], c="C3", s=30, label="Pareto front")
        ax.set_xlabel(metrics[i])
        ax.set_ylabel(metrics[j])
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if isinstance(x, float) else str(x)
