"""Privacy lower bounds and low-prior precision from a membership attack's ROC.

A membership attack is a hypothesis test "member vs non-member". If the model was trained with
(ε, δ)-DP, every threshold of every attack satisfies (Kairouz et al. 2015, the hypothesis-testing
view of DP)

    FPR + e^ε · FNR >= 1 - δ   and   FNR + e^ε · FPR >= 1 - δ,

so an observed (FPR, FNR) pair certifies ε >= max(log((1 - δ - FNR)/FPR), log((1 - δ - FPR)/FNR))
(Jagielski, Ullman, Oprea, "Auditing Differentially Private Machine Learning: How Private is
Private SGD?", NeurIPS 2020; Nasr, Song, Thakurta, Papernot, Carlini, "Adversary Instantiation:
Lower Bounds for Differentially Private Machine Learning", S&P 2021). To turn the rates measured
on a finite evaluation set into a statement at confidence 1 - α, both are replaced by their
one-sided Clopper–Pearson upper bounds FPR⁺, FNR⁺ (exact binomial, via the Beta quantile).

Gaussian DP (Dong, Roth, Su 2022): a μ-GDP mechanism has the trade-off curve
FNR = Φ(Φ⁻¹(1 - FPR) - μ), so a pair (FPR, FNR) certifies μ >= Φ⁻¹(1 - FPR) - Φ⁻¹(FNR).
Nasr, Hayes, Steinke, Balle, Tramèr, Jagielski, Carlini, Terzis, "Tight Auditing of
Differentially Private Machine Learning", USENIX Security 2023, audit DP-SGD through this μ
(with the same Clopper–Pearson rates) and convert it to ε at δ with the exact GDP (ε, δ) curve
δ(ε) = Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2) (Dong et al. Cor. 2.13), ``eps_from_mu``.
That ε (``eps_lb_gdp``) assumes the mechanism's trade-off curve *is* Gaussian (as DP-SGD's is
asymptotically, Dong et al. §5): one point of the curve then fixes all of it, so it can exceed
``eps_lb``. For an arbitrary mechanism only ``eps_lb`` is a lower bound.

``eps_lb`` / ``mu_lb`` (metrics/heldout.py) apply these bounds soundly: the threshold is chosen on
a held-out half and counted once on the other. Taking the maximum over every threshold of the
same scores (the "empirical" bound of TensorFlow Privacy's and ML Privacy Meter's reports) is
not a 1 - α bound: without any signal it is > 0 in 15-29% of evaluations.

PPV at a prior π (members are a fraction π of the population the attacker faces):
PPV = π·TPR / (π·TPR + (1 - π)·FPR). Balanced accuracy assumes π = ½; at π = 1% an attack with
TPR 50% and FPR 5% is right about a "member" only 9% of the time (Jayaraman, Wang, Knipmeyer,
Gu, Evans, "Revisiting Membership Inference Under Realistic Assumptions", PETS 2021).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import log_ndtr, ndtr
from scipy.stats import beta, norm

from lit_mia.errors import ConfigError
from lit_mia.metrics.roc import check_scores

PRIORS = (0.01, 0.1)
"""Member fractions of the ``ppv_at_prior_<π>`` keys of attack_metrics."""


def check_alpha_delta(alpha: float, delta: float) -> None:
    """ConfigError unless α and δ are both in (0, 1)."""
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"attack.alpha must be in (0, 1), got {alpha!r}")
    if not 0.0 < float(delta) < 1.0:
        raise ConfigError(f"attack.delta must be in (0, 1), got {delta!r}")


def clopper_pearson_upper(k: ArrayLike, n: int, alpha: float) -> np.ndarray:
    """One-sided (1 - α) Clopper–Pearson upper bound of a binomial rate: k successes of n.

    The α-quantile complement of Beta(k + 1, n - k); 1.0 where k = n. For k = 0 it equals
    1 - α^(1/n) exactly.
    """
    k = np.asarray(k, dtype=np.float64)
    n = int(n)
    if n < 1 or np.any(k < 0) or np.any(k > n):
        raise ConfigError(f"Clopper-Pearson needs 0 <= k <= n, n >= 1; got n={n}")
    with np.errstate(invalid="ignore"):
        up = beta.ppf(1.0 - alpha, k + 1.0, np.maximum(n - k, 1e-300))
    return np.where(k >= n, 1.0, up)


def clopper_pearson_lower(k: ArrayLike, n: int, alpha: float) -> np.ndarray:
    """One-sided (1 - α) Clopper–Pearson lower bound of a binomial rate (0.0 where k = 0)."""
    k = np.asarray(k, dtype=np.float64)
    return 1.0 - clopper_pearson_upper(int(n) - k, n, alpha)


def eps_from_rates(fpr: ArrayLike, fnr: ArrayLike, delta: float) -> np.ndarray:
    """ε certified by (FPR, FNR) pairs at δ: max of the two DP inequalities' logs, at least 0.

    ``max(log((1 - δ - FNR)/FPR), log((1 - δ - FPR)/FNR), 0)``; a zero rate with a positive
    numerator gives +inf (no ε explains it)."""
    fpr = np.asarray(fpr, dtype=np.float64)
    fnr = np.asarray(fnr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.maximum(1.0 - delta - fnr, 0.0) / fpr)
        b = np.log(np.maximum(1.0 - delta - fpr, 0.0) / fnr)
    out = np.fmax(np.fmax(a, b), 0.0)  # fmax: NaN (0/0) -> the other value
    return np.nan_to_num(out, nan=0.0)


def mu_from_rates(fpr: ArrayLike, fnr: ArrayLike) -> np.ndarray:
    """GDP μ certified by (FPR, FNR): ``max(Φ⁻¹(1 - FPR) - Φ⁻¹(FNR), 0)`` (the trade-off curve
    of μ-GDP is symmetric, so one direction suffices); +inf where both rates are 0."""
    fpr = np.asarray(fpr, dtype=np.float64)
    fnr = np.asarray(fnr, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        mu = norm.isf(fpr) - norm.ppf(fnr)
    return np.nan_to_num(np.maximum(mu, 0.0), nan=0.0)


def eps_lb_at(
    predicted: ArrayLike, is_member: ArrayLike, alpha: float = 0.05, delta: float = 1e-5
) -> float:
    """ε lower bound at confidence 1 - α of one fixed decision rule (bool per sample, chosen
    without looking at these samples): the sound form of ``eps_lb``."""
    check_alpha_delta(alpha, delta)
    d = np.asarray(predicted, dtype=bool).reshape(-1)
    _, m = check_scores(np.zeros(d.size), is_member)
    n_pos, n_neg = int(m.sum()), int((~m).sum())
    fp, fn = int(np.sum(d & ~m)), int(np.sum(~d & m))
    # both directions at once need both bounds to hold: α/2 each (union bound)
    fpr_up = clopper_pearson_upper(fp, n_neg, alpha / 2)
    fnr_up = clopper_pearson_upper(fn, n_pos, alpha / 2)
    return float(eps_from_rates(fpr_up, fnr_up, delta))


def gdp_delta(eps: float, mu: float) -> float:
    """δ(ε) of μ-GDP: Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2) (Dong, Roth, Su 2022, Cor. 2.13)."""
    if mu <= 0:
        return 0.0
    # e^ε Φ(b) computed in log space so large ε does not overflow
    return float(ndtr(-eps / mu + mu / 2) - math.exp(eps + log_ndtr(-eps / mu - mu / 2)))


def eps_from_mu(mu: float, delta: float) -> float:
    """The ε at which a μ-GDP mechanism is (ε, δ)-DP (root of gdp_delta(ε, μ) = δ; 0.0 when
    δ(0) <= δ already). Monotone in μ; +inf for μ = inf."""
    if not 0.0 < float(delta) < 1.0:
        raise ConfigError(f"attack.delta must be in (0, 1), got {delta!r}")
    if math.isinf(mu):
        return math.inf
    if mu <= 0 or gdp_delta(0.0, mu) <= delta:
        return 0.0
    lo, hi = 0.0, 1.0
    while gdp_delta(hi, mu) > delta:
        hi *= 2.0
    for _ in range(100):  # bisection on the decreasing δ(ε)
        mid = 0.5 * (lo + hi)
        if gdp_delta(mid, mu) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def ppv(tpr: ArrayLike, fpr: ArrayLike, prior: float) -> np.ndarray:
    """Precision of a decision with the given TPR and FPR when members are a fraction ``prior``
    of the population: π·TPR / (π·TPR + (1 - π)·FPR); 0.0 where nobody is predicted a member
    (TPR = FPR = 0, sklearn's zero_division=0 convention)."""
    if not 0.0 < float(prior) < 1.0:
        raise ConfigError(f"prior must be in (0, 1), got {prior!r}")
    tpr = np.asarray(tpr, dtype=np.float64)
    fpr = np.asarray(fpr, dtype=np.float64)
    num = prior * tpr
    den = num + (1.0 - prior) * fpr
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


__all__ = [
    "PRIORS",
    "check_alpha_delta",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "eps_from_mu",
    "eps_from_rates",
    "eps_lb_at",
    "gdp_delta",
    "mu_from_rates",
    "ppv",
]
