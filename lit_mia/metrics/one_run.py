"""One-run privacy audit (Steinke, Nasr, Jagielski, "Privacy Auditing with One (1) Training
Run", NeurIPS 2023): m canaries, each included in the one training run independently with
probability ½; the auditor guesses IN / OUT for r of them and abstains on the rest; W of the r
guesses are right.

ε-DP (their Theorem 3.1): W is stochastically dominated by Binomial(r, e^ε / (1 + e^ε)), so
the p-value of "the algorithm is ε-DP" given W = v is β = P[Binomial(r, q) >= v], q = e^ε/(1+e^ε).

(ε, δ)-DP (their Theorem 5.2 and the p-value of their Algorithm 2): the tail gets a 2mδ term,

    P[W >= v] <= β + 2 m δ · max_{1<=i<=v} (P[Binomial(r, q) >= v - i] - β) / i,

where m counts *all* canaries (also those guessed on abstention). The independence this needs
is that of the canaries' random inclusion, which a single run does have; it is *not* the
independence of separate training runs (none is assumed). ``one_run_eps`` is the largest ε
whose p-value is <= α: a lower bound on ε at confidence 1 - α.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import bdtrc
from scipy.stats import binom

from lit_mia.errors import ConfigError


def one_run_p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """p-value of "(ε, δ)-DP" after v correct of r guesses on m canaries (module docstring)."""
    m, r, v = int(m), int(r), int(v)
    if not 0 <= v <= r <= m or r < 1:
        raise ConfigError(
            f"one-run audit needs 0 <= correct <= guesses <= canaries, got {v}/{r}/{m}"
        )
    if not 0.0 <= float(delta) < 1.0:
        raise ConfigError(f"delta must be in [0, 1), got {delta!r}")
    q = 1.0 / (1.0 + math.exp(-eps))
    beta = float(bdtrc(v - 1, r, q)) if v > 0 else 1.0  # P[W >= v]
    if delta == 0.0 or v == 0:
        return min(beta, 1.0)
    i = np.arange(1, v + 1)
    gain = np.cumsum(binom.pmf(v - i, r, q)) / i  # (P[W >= v - i] - P[W >= v]) / i
    return float(min(beta + 2.0 * m * delta * float(gain.max()), 1.0))


def one_run_eps(
    correct: int, guesses: int, alpha: float, delta: float = 0.0, m: int | None = None
) -> float:
    """Largest ε with ``one_run_p_value(m, guesses, correct, ε, δ) <= α`` (bisection, 50
    halvings); 0.0 when ε = 0 is not rejected. ``m`` (canaries) defaults to ``guesses``."""
    r, v = int(guesses), int(correct)
    m = r if m is None else int(m)
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"attack.alpha must be in (0, 1), got {alpha!r}")

    def rejected(eps: float) -> bool:
        return one_run_p_value(m, r, v, eps, delta) <= alpha

    if not rejected(0.0):
        return 0.0
    lo, hi = 0.0, 1.0
    while rejected(hi) and hi < 100:
        lo, hi = hi, 2 * hi
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rejected(mid) else (lo, mid)
    return lo


def one_run_guesses(scores: ArrayLike, included: ArrayLike, fraction: float):
    """(correct, guesses) of the one-run auditor: IN for the k highest scores, OUT for the k
    lowest, k = round(fraction·m/2), at least 1 and at most m // 2 (no canary guessed twice).
    Along the last axis: a 2-D array of draws gives one count per row (metrics/planning.py)."""
    s = np.asarray(scores, dtype=np.float64)
    inc = np.asarray(included, dtype=bool)
    m = s.shape[-1]
    k = min(max(1, int(round(fraction * m / 2))), m // 2)  # noqa: RUF046 (numpy floats)
    ranked = np.take_along_axis(inc, np.argsort(s, axis=-1, kind="stable"), axis=-1)
    correct = ranked[..., m - k :].sum(-1) + (~ranked[..., :k]).sum(-1)
    return (int(correct) if np.ndim(correct) == 0 else correct), 2 * k


__all__ = ["one_run_eps", "one_run_guesses", "one_run_p_value"]
