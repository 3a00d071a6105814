"""Paired comparison of two targets scored on the same members and non-members.

"Does the PGD-trained model leak more than the naturally trained one?" is a question about the
difference of two correlated estimates: both targets are attacked on the same evaluation
samples, so a hard member is hard for both and the two AUCs move together. Comparing their
separate intervals ("they overlap") ignores that correlation and has no stated error rate.
Here (target b minus reference a):

- ``delta_auc``: AUC_b - AUC_a with DeLong's paired variance (metrics/delong.py; DeLong et
  al., Biometrics 1988, §2): Var = Var_a + Var_b - 2 Cov_ab from the structural components of
  both score vectors over the same samples; normal interval and two-sided p-value of Δ = 0.
- ``delta_tpr_at_fpr_<level>``: TPR_b - TPR_a at empirical FPR strictly below ``level``
  (metrics.tpr_at_fpr), interval and two-sided p-value from a paired, stratified bootstrap:
  members and non-members are resampled with replacement separately, and each resample
  scores both targets on the *same* drawn samples (Efron & Tibshirani 1993, §16.4, bootstrap
  of a paired difference). p = 2 · min(#{Δ* <= 0} + 1, #{Δ* >= 0} + 1) / (B + 1), capped at
  1 (the percentile interval's inversion).

`compare_attacks` does this for every attack both targets were scored by and adds a
Bonferroni correction over the attacks (``_p_adjusted`` = min(1, k · p) and
``delta_auc_simultaneous_ci_*`` at level 1 - α/k), so the attack a reader singles out (the
smallest adjusted p) keeps its error rate. `align` pairs two targets' score files by dataset
index and role (member / non-member), keeping only the samples both scored in the same role.

tests/metrics/test_paired.py compares the variance with the naive U-statistic formula and the
AUCs with sklearn, and checks size (no difference: p < 0.05 in at most 5% of simulations) and
coverage (known ΔAUC) by simulation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from lit_mia.errors import ConfigError
from lit_mia.metrics.delong import _check_level, auc_covariance, z_interval
from lit_mia.metrics.roc import tpr_at_fpr

RESAMPLES = 1000
"""Paired bootstrap resamples for ΔTPR (a p-value near 0.05 needs ~1,000)."""
TPR_LEVEL = 0.01
CHUNK = 200


def align(
    index_a: ArrayLike | None,
    member_a: ArrayLike,
    scores_a: ArrayLike,
    index_b: ArrayLike | None,
    member_b: ArrayLike,
    scores_b: ArrayLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores_a, scores_b, is_member) over the samples both targets scored in the same role,
    matched by (dataset index, is_member), in target a's order. Without indices the two must
    list the same roles in the same order (else ConfigError)."""
    ma, mb = np.asarray(member_a).astype(bool), np.asarray(member_b).astype(bool)
    sa, sb = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if index_a is None or index_b is None:
        if ma.shape != mb.shape or not np.array_equal(ma, mb):
            raise ConfigError("cannot pair two score sets without indices: roles differ")
        return sa, sb, ma
    pos_b = {(int(i), bool(r)): k for k, (i, r) in enumerate(zip(index_b, mb, strict=True))}
    ka, kb = [], []
    for k, (i, r) in enumerate(zip(index_a, ma, strict=True)):
        j = pos_b.get((int(i), bool(r)))
        if j is not None:
            ka.append(k)
            kb.append(j)
    ka_, kb_ = np.asarray(ka, dtype=int), np.asarray(kb, dtype=int)
    return sa[ka_], sb[kb_], ma[ka_]


def _allowed_fp(n_neg: int, level: float) -> int:
    """Most false positives with FPR = fp / n_neg strictly below ``level`` (0 always allowed,
    as in metrics.tpr_at_fpr)."""
    k = np.arange(n_neg)
    ok = k[k / n_neg < level]
    return int(ok.max()) if ok.size else 0


def tpr_rows(pos: np.ndarray, neg: np.ndarray, level: float) -> np.ndarray:
    """metrics.tpr_at_fpr of each row pair (pos [B, m], neg [B, n]) at once: the fraction of
    members strictly above the (k + 1)-th largest non-member score, k = ``_allowed_fp``."""
    n = neg.shape[1]
    k = _allowed_fp(n, level)
    thr = np.partition(neg, n - 1 - k, axis=1)[:, n - 1 - k]
    return (pos > thr[:, None]).mean(axis=1)


def bootstrap_p(deltas: np.ndarray) -> float:
    """Two-sided bootstrap p-value of Δ = 0 (module docstring)."""
    b = deltas.size
    lo, hi = int(np.sum(deltas <= 0)), int(np.sum(deltas >= 0))
    return float(min(1.0, 2.0 * (min(lo, hi) + 1) / (b + 1)))


def paired_tpr_bootstrap(
    sa: np.ndarray,
    sb: np.ndarray,
    m: np.ndarray,
    level: float = TPR_LEVEL,
    n_resamples: int = RESAMPLES,
    seed: int = 0,
) -> np.ndarray:
    """The B bootstrap values of TPR_b - TPR_a at FPR < ``level``, both on the same resampled
    members and non-members (stratified)."""
    pos, neg = np.flatnonzero(m), np.flatnonzero(~m)
    rng = np.random.default_rng((int(seed), 0x9A1))
    out = []
    for start in range(0, int(n_resamples), CHUNK):
        b = min(CHUNK, int(n_resamples) - start)
        ip = pos[rng.integers(0, pos.size, (b, pos.size))]
        ineg = neg[rng.integers(0, neg.size, (b, neg.size))]
        out.append(tpr_rows(sb[ip], sb[ineg], level) - tpr_rows(sa[ip], sa[ineg], level))
    return np.concatenate(out)


def paired_comparison(
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    is_member: ArrayLike,
    level: float = 0.95,
    n_resamples: int = RESAMPLES,
    seed: int = 0,
    fpr: float = TPR_LEVEL,
) -> dict[str, float]:
    """Target b against reference a on the same samples (module docstring): ``auc_a``,
    ``auc_b``, ``delta_auc`` with ``_ci_low`` / ``_ci_high`` (DeLong, ``level``) and ``_p``;
    ``delta_tpr_at_fpr_<fpr>`` with ``_ci_low`` / ``_ci_high`` (paired percentile bootstrap)
    and ``_p``; ``n_members``, ``n_nonmembers``."""
    _check_level(level)
    if int(n_resamples) < 100:
        raise ConfigError(f"paired bootstrap resamples must be >= 100, got {n_resamples}")
    auc, cov = auc_covariance([scores_a, scores_b], is_member)
    sa, sb = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    m = np.asarray(is_member).astype(bool)
    delta = float(auc[1] - auc[0])
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1], 0.0)))
    lo, hi, p = z_interval(delta, se, level)
    key = f"delta_tpr_at_fpr_{fpr}"
    d_tpr = tpr_at_fpr(sb, m, fpr) - tpr_at_fpr(sa, m, fpr)
    boot = paired_tpr_bootstrap(sa, sb, m, fpr, n_resamples, seed)
    t_lo, t_hi = np.quantile(boot, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return {
        "auc_a": float(auc[0]),
        "auc_b": float(auc[1]),
        "delta_auc": delta,
        "delta_auc_se": se,
        "delta_auc_ci_low": lo,
        "delta_auc_ci_high": hi,
        "delta_auc_p": p,
        key: float(d_tpr),
        f"{key}_ci_low": float(t_lo),
        f"{key}_ci_high": float(t_hi),
        f"{key}_p": bootstrap_p(boot),
        "n_members": float(m.sum()),
        "n_nonmembers": float((~m).sum()),
    }


def compare_attacks(
    pairs: Mapping[str, tuple[ArrayLike, ArrayLike, ArrayLike]],
    level: float = 0.95,
    n_resamples: int = RESAMPLES,
    seed: int = 0,
    fpr: float = TPR_LEVEL,
) -> dict[str, dict[str, float]]:
    """``paired_comparison`` per attack (name -> (scores_a, scores_b, is_member)) with a
    Bonferroni correction over the k attacks: ``delta_auc_p_adjusted``,
    ``delta_tpr_at_fpr_<fpr>_p_adjusted`` (min(1, k · p)) and
    ``delta_auc_simultaneous_ci_low`` / ``_high`` (level 1 - (1 - level)/k)."""
    k = len(pairs)
    if k == 0:
        return {}
    each = 1.0 - (1.0 - _check_level(level)) / k
    out = {}
    tpr_key = f"delta_tpr_at_fpr_{fpr}"
    for name, (sa, sb, m) in pairs.items():
        r = paired_comparison(sa, sb, m, level, n_resamples, seed, fpr)
        lo, hi, _ = z_interval(r["delta_auc"], r["delta_auc_se"], each)
        r["delta_auc_simultaneous_ci_low"], r["delta_auc_simultaneous_ci_high"] = lo, hi
        r["delta_auc_p_adjusted"] = min(1.0, k * r["delta_auc_p"])
        r[f"{tpr_key}_p_adjusted"] = min(1.0, k * r[f"{tpr_key}_p"])
        out[name] = r
    return out


__all__ = [
    "RESAMPLES",
    "align",
    "bootstrap_p",
    "compare_attacks",
    "paired_comparison",
    "paired_tpr_bootstrap",
    "tpr_rows",
]
