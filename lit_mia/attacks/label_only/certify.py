"""Certified radius by randomized smoothing (Li & Zhang CCS'21 §5.1 and Appendix A.2; Cohen,
Rosenfeld, Kolter ICML 2019, CERTIFY).

The smoothed classifier G(x) = argmax_c P(M(x + e) = c), e ~ N(0, sigma^2 I), needs only labels
of M, so it runs on a `LabelOracle`. Per sample (Cohen's CERTIFY, batched over samples):

    c_A   = most frequent label among N0 noisy copies (selection draws)
    p_A   = one-sided (1 - alpha) Clopper-Pearson lower bound of P(M(x + e) = c_A) from N
            fresh copies (estimation draws)
    CR    = sigma * Phi^-1(p_A) if p_A > 1/2 and c_A = y, else 0 (abstain or wrong)

CR = sigma/2 (Phi^-1(p_A) - Phi^-1(p_B)) with p_B = 1 - p_A is eq. (6) of the paper; a sample the
smoothed classifier abstains on or gets wrong has no certified radius at its true label (radius
0, as MACER's ACR). ACR = mean CR over members / non-members (eqs. 2-3, Tables 3/5). Defaults
(docs/reference/paper-defaults.md#label-only-membership-inference): sigma 0.25, N0 100,
N 100,000, alpha 0.001.

Noise is drawn per sample from its own generator (seed per sample) in fixed chunks of
`CHUNK` draws, so a sample's radius does not depend on which samples share its batch.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import beta, norm
from torch import Tensor

from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.label_only.common import eval_subset, label_result
from lit_mia.attacks.label_only.oracle import LabelOracle
from lit_mia.attacks.label_only.settings import CertSettings  # noqa: F401
from lit_mia.errors import ConfigError
from lit_mia.perturb.hopskipjump import sample_seeds

CHUNK = 1000  # noise draws per sample per oracle round


def clopper_pearson_lower(k: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """One-sided (1 - alpha) lower confidence bound of a binomial proportion with k of n
    successes: Beta(alpha; k, n - k + 1) quantile, 0 where k = 0 (Clopper & Pearson 1934;
    Cohen's `proportion_confint(k, n, alpha=2 * alpha, method="beta")[0]`)."""
    k = np.asarray(k, dtype=float)
    with np.errstate(all="ignore"):
        lb = beta.ppf(alpha, k, n - k + 1)
    return np.where(k > 0, np.nan_to_num(lb, nan=0.0), 0.0)


def _counts(
    oracle, x: Tensor, owners: np.ndarray, gens, n_draws: int, n_classes: int, sigma, rows: int
) -> np.ndarray:
    """[N, n_classes] label counts of n_draws noisy copies per sample."""
    n = len(x)
    counts = np.zeros((n, n_classes), dtype=np.int64)
    group = max(1, rows // min(CHUNK, max(1, n_draws)))
    for start in range(0, n_draws, CHUNK):
        m = min(CHUNK, n_draws - start)
        for s in range(0, n, group):
            ids = np.arange(s, min(n, s + group))
            noise = torch.stack(
                [torch.randn((m, *x.shape[1:]), generator=gens[i], dtype=x.dtype) for i in ids]
            )
            batch = (x[torch.as_tensor(ids)][:, None] + sigma * noise).reshape(
                len(ids) * m, *x.shape[1:]
            )
            labels = oracle(batch, np.repeat(owners[ids], m)).numpy().reshape(len(ids), m)
            for j, i in enumerate(ids):
                counts[i] += np.bincount(labels[j], minlength=n_classes)[:n_classes]
    return counts


def certify(
    oracle,
    x: Tensor,
    y: Tensor,
    *,
    sigma: float,
    n0: int,
    n: int,
    alpha: float,
    n_classes: int,
    seeds: list[int],
    owners: np.ndarray | None = None,
    rows: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cohen's CERTIFY for every sample of x [N, *]: (c_A [N], p_A lower bound [N], radius [N]).
    The radius at the true label y: sigma * Phi^-1(p_A) when c_A = y and p_A > 1/2, else 0.
    Noise stays unclipped (Cohen et al.); queries per sample: n0 + n."""
    check_cert(sigma, n0, n, alpha)
    own = np.arange(len(x)) if owners is None else np.asarray(owners)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    c0 = _counts(oracle, x, own, gens, n0, n_classes, sigma, rows)
    c_a = c0.argmax(1)
    c1 = _counts(oracle, x, own, gens, n, n_classes, sigma, rows)
    p_a = clopper_pearson_lower(c1[np.arange(len(x)), c_a], n, alpha)
    ok = (p_a > 0.5) & (c_a == y.cpu().numpy())
    radius = np.where(ok, sigma * norm.ppf(np.clip(p_a, 0.5, 1.0)), 0.0)
    return c_a, p_a, radius


def check_cert(sigma: float, n0: int, n: int, alpha: float, prefix: str = "attack.cert") -> None:
    if not sigma > 0:
        raise ConfigError(f"{prefix}.sigma must be > 0 (noise std), got {sigma}")
    if n0 < 1:
        raise ConfigError(f"{prefix}.n0 must be >= 1, got {n0}")
    if n < 1:
        raise ConfigError(f"{prefix}.n must be >= 1, got {n}")
    if not 0 < alpha < 1:
        raise ConfigError(f"{prefix}.alpha must be in (0, 1), got {alpha}")


def check(cfg) -> None:
    c = cfg.attack.cert
    check_cert(c.sigma, c.n0, c.n, c.alpha)
    if c.n_eval < 1:
        raise ConfigError(f"attack.cert.n_eval must be >= 1, got {c.n_eval}")
    if c.query_rows < 1:
        raise ConfigError(f"attack.cert.query_rows must be >= 1, got {c.query_rows}")


def run(ctx: AttackContext) -> AttackResult:
    """ACR of members vs non-members on the first `attack.cert.n_eval` of each; the radius is
    also the membership score (larger = member)."""
    c = ctx.cfg.attack.cert
    sub = eval_subset(ctx, c.n_eval)
    oracle = LabelOracle(ctx.target, len(sub), budget=c.n0 + c.n, batch_size=c.query_rows)
    _, _p_a, radius = certify(
        oracle,
        sub.x,
        sub.y,
        sigma=float(c.sigma),
        n0=int(c.n0),
        n=int(c.n),
        alpha=float(c.alpha),
        n_classes=ctx.bundle.n_classes,
        seeds=sample_seeds(int(ctx.cfg.seed) + 101, sub.index),
        rows=int(c.query_rows),
    )
    res = label_result(ctx, radius, sub)
    mem = sub.is_member == 1
    res.metrics.update(
        {
            "acr_member": float(radius[mem].mean()),
            "acr_nonmember": float(radius[~mem].mean()),
            "certified_member": float((radius[mem] > 0).mean()),
            "certified_nonmember": float((radius[~mem] > 0).mean()),
            "queries_per_sample": float(c.n0 + c.n),
        }
    )
    return res


__all__ = ["certify", "check_cert", "clopper_pearson_lower"]
