"""Divergence of member and non-member loss distributions (Song, Shokri, Mittal DLS'19)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lit_mia.errors import ConfigError
from lit_mia.metrics.roc import as_scores

KL_SMOOTHING = 1e-6
"""Additive constant put on every normalised histogram bin before renormalising (loss_kl)."""


def loss_kl(member_losses: ArrayLike, nonmember_losses: ArrayLike, bins: int = 50) -> float:
    """KL divergence ``KL(P_members || P_nonmembers)`` of histogrammed cross-entropy losses.

    The DLS'19 metric (Song, Shokri, Mittal, Sec. III "KL divergence"): how the distribution of
    the CE loss ``-log F(x)_y`` over training examples (members) differs from that over test
    examples (non-members); 0 for a model with no membership leakage, larger = easier to tell
    apart. The paper does not write the formula; we read "training ... different from ... test"
    as ``sum_i p_i log(p_i / q_i)`` with p the member and q the non-member histogram.

    Estimator: ``bins`` equal-width bins over ``[min, max]`` of all losses pooled (both
    histograms share the bins); each histogram is normalised to sum 1, then ``KL_SMOOTHING``
    (1e-6) is added to every bin and it is renormalised, so an empty non-member bin gives a large
    but finite term instead of inf. If all losses are equal the result is 0. The value depends on
    ``bins`` and on the sample sizes: compare numbers computed with the same settings only.
    """
    p_x = as_scores(member_losses, "member_losses")
    q_x = as_scores(nonmember_losses, "nonmember_losses")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ConfigError(f"bins must be a positive integer, got {bins!r}")
    lo = float(min(p_x.min(), q_x.min()))
    hi = float(max(p_x.max(), q_x.max()))
    if lo == hi:
        return 0.0
    p = np.histogram(p_x, bins=int(bins), range=(lo, hi))[0] / p_x.size + KL_SMOOTHING
    q = np.histogram(q_x, bins=int(bins), range=(lo, hi))[0] / q_x.size + KL_SMOOTHING
    p /= p.sum()
    q /= q.sum()
    return float(max(np.sum(p * np.log(p / q)), 0.0))
