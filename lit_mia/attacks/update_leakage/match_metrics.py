"""Pure metric functions of the Updates-Leak attacks (Salem et al. USENIX Security'20, §4-5,
appendix E; evaluation choices of the released code:
docs/reference/paper-defaults.md#update-leakage).

- `best_match_loss`: CBM-GAN's best-match term: for every real sample of an update set, the
  squared L2 distance to its nearest generated sample, averaged over the real samples.
- `hungarian_mse`: mean per-pixel MSE between two sets of equal size after the minimum-cost
  one-to-one matching (scipy.optimize.linear_sum_assignment on the pairwise MSE).
- `kmeans_representatives`: k-means (k = update-set size) on generated samples, then the
  generated sample nearest each centroid; `msr_mse` chains both (the A_MSR metric).
- `histograms`, `kl_divergence`, `argmax_accuracy`: A_LDE's label-distribution metrics,
  KL(true || predicted) with 0 log 0 = 0.
- `label_random_draws`: the Label-random / Random baselines of A_SSR (§4.2, Fig. 4).

Images are compared in pixel space [0, 1] (the project invariant); the modules' tanh outputs in
[-1, 1] are mapped back before any metric.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def best_match_loss(generated: Tensor, real: Tensor) -> Tensor:
    """generated [B, G, D], real [B, k, D] -> mean over B and k of min_g ||gen_g - real_j||^2."""
    d = torch.cdist(real, generated).pow(2)  # [B, k, G] squared L2
    return d.min(dim=-1).values.mean()


def pairwise_mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[n, D] x [m, D] -> [n, m] per-pixel mean squared error."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0) / a.shape[1]


def hungarian_mse(pred: np.ndarray, real: np.ndarray) -> float:
    """Mean MSE of the best one-to-one matching between pred [k, D] and real [k, D]."""
    cost = pairwise_mse(pred, real)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def kmeans_representatives(samples: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means on samples [G, D] (k clusters), then the sample nearest each centroid: [k, D]."""
    from sklearn.cluster import KMeans

    samples = np.asarray(samples, dtype=np.float64)
    if k == 1:
        centers = samples.mean(0, keepdims=True)
    else:
        centers = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(samples).cluster_centers_
    nearest = pairwise_mse(centers, samples).argmin(1)
    return samples[nearest]


def msr_mse(generated: np.ndarray, real: np.ndarray, seed: int = 0) -> float:
    """A_MSR metric for one update set: generated [G, D], real [k, D] (both in [0, 1])."""
    reps = kmeans_representatives(generated, len(real), seed)
    return hungarian_mse(reps, real)


def histograms(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """labels [m, k] -> label histograms [m, n_classes] (rows sum to 1)."""
    labels = np.asarray(labels)
    out = np.zeros((labels.shape[0], n_classes))
    np.add.at(out, (np.repeat(np.arange(labels.shape[0]), labels.shape[1]), labels.ravel()), 1)
    return out / labels.shape[1]


def kl_divergence(true: np.ndarray, pred: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """KL(true || pred) per row, [m]; 0 log 0 = 0, pred clipped at eps."""
    true, pred = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    ratio = np.where(true > 0, true / np.maximum(pred, eps), 1.0)
    return (true * np.log(ratio)).sum(1)


def argmax_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of rows whose predicted argmax is one of the true histogram's maxima."""
    true, pred = np.asarray(true), np.asarray(pred)
    top = pred.argmax(1)
    return float((true[np.arange(len(true)), top] >= true.max(1) - 1e-12).mean())


def random_histograms(m: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """The random-histogram baseline: m draws from the flat Dirichlet(1, ..., 1)."""
    return rng.dirichlet(np.ones(n_classes), size=m)


def label_random_draws(
    labels: np.ndarray, pool_labels: np.ndarray, rng: np.random.Generator, same_label: bool
) -> np.ndarray:
    """Positions into the adversary's pool: per query, a random pool sample of the same label
    (Label-random) or of any label (Random). A label missing from the pool falls back to any."""
    labels, pool_labels = np.asarray(labels), np.asarray(pool_labels)
    out = rng.integers(0, pool_labels.size, size=labels.size)
    if same_label:
        for c in np.unique(labels):
            where = np.flatnonzero(pool_labels == c)
            if where.size:
                sel = labels == c
                out[sel] = where[rng.integers(0, where.size, size=int(sel.sum()))]
    return out


__all__ = [
    "argmax_accuracy",
    "best_match_loss",
    "histograms",
    "hungarian_mse",
    "kl_divergence",
    "kmeans_representatives",
    "label_random_draws",
    "msr_mse",
    "pairwise_mse",
    "random_histograms",
]
