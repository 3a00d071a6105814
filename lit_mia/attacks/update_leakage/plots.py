"""Figures of the Updates-Leak attacks (each returns a matplotlib Figure, saves nothing).

- `image_rows`: a grid with one labelled row per method (original / attack / AE oracle, as in
  Fig. 5 of Salem et al. USENIX Security'20), columns = fair random draws.
- `label_bars`: true vs predicted label histograms of a few update sets (A_LDE).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def image_rows(rows: dict[str, np.ndarray], title: str = "") -> Figure:
    """rows: name -> images [n, H, W] (or [n, C, H, W]) in [0, 1], the same n for every row."""
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(
        len(rows), n, figsize=(1.1 * n + 1.2, 1.2 * len(rows) + 0.4), squeeze=False
    )
    for r, (name, imgs) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(imgs):
                img = np.asarray(imgs[c])
                if img.ndim == 3:
                    img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
                ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def label_bars(true: np.ndarray, pred: np.ndarray, title: str = "") -> Figure:
    """true, pred: histograms [n_sets, n_classes]; one panel per update set."""
    n, c = true.shape
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.4), squeeze=False, sharey=True)
    x = np.arange(c)
    for i in range(n):
        ax = axes[0, i]
        ax.bar(x - 0.2, true[i], 0.4, label="true", color="tab:blue")
        ax.bar(x + 0.2, pred[i], 0.4, label="A_LDE", color="tab:orange")
        ax.set_xticks(x)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("label", fontsize=7)
    axes[0, 0].set_ylabel("fraction")
    axes[0, 0].legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def curves(history: dict[str, list[float]], title: str = "") -> Figure:
    """One panel per logged loss, x = epoch (a training curve)."""
    n = max(1, len(history))
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 2.6), squeeze=False)
    for ax, (name, v) in zip(axes[0], history.items(), strict=False):
        ax.plot(np.arange(1, len(v) + 1), v, marker=".")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def stepped(series: dict[str, dict[str, list[tuple[float, float]]]], title: str = "") -> Figure:
    """One panel per factor: {factor: {metric: [(x, y), ...]}}, metric curves against x."""
    n = max(1, len(series))
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 2.8), squeeze=False)
    for ax, (factor, lines) in zip(axes[0], series.items(), strict=False):
        for name, pts in lines.items():
            xs, ys = zip(*pts, strict=True) if pts else ((), ())
            ax.plot(xs, ys, marker="o", label=name)
        ax.set_xlabel(factor, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["curves", "image_rows", "label_bars", "stepped"]
