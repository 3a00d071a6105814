"""Thresholds without shadow data (Li & Zhang CCS'21 §4.4, Algorithm 3).

The adversary of the boundary attack has no data: it draws uniformly random inputs (each pixel
from U[0, 1]; Algorithm 3 writes a Gaussian, the text and Fig. 11 use uniform, see
docs/reference/paper-defaults.md#label-only-membership-inference), treats them as non-members,
perturbs them with the same HopSkipJump until the target's label changes, and takes the top-t
percentile of their distances as the threshold tau: the distances sorted in descending order,
tau = q(t), i.e. the (100 - t)-th percentile. A candidate is a member iff its distance > tau
(Algorithm 2, lines 10-13). Fig. 11 reports the F1 score for each t; t in 30..80% performs
well. Defaults: 100 random inputs, t = 30, 40, ..., 80.
"""

from __future__ import annotations

import numpy as np
import torch

from lit_mia import metrics
from lit_mia.errors import ConfigError


def random_inputs(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """n uniformly random inputs in [0, 1]^shape from a seeded generator."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.rand((int(n), *shape), generator=g)


def check_percentiles(ts, key: str = "attack.thresholds.percentiles") -> None:
    for t in ts:
        if not 0.0 < float(t) < 100.0:
            raise ConfigError(f"{key} entries must be in (0, 100) (top-t percentile), got {t}")


def percentile_threshold(random_distances: np.ndarray, t: float) -> float:
    """tau = the top-t percentile of the random inputs' distances (descending order)."""
    check_percentiles([t])
    return float(np.percentile(np.asarray(random_distances, dtype=float), 100.0 - float(t)))


def f1_score(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def threshold_table(
    scores: np.ndarray, is_member: np.ndarray, random_distances: np.ndarray, ts
) -> list[dict[str, float]]:
    """One row per t: tau, and F1 / balanced accuracy / precision / recall of the decision
    `member iff distance > tau` on the candidates (scores = their distances)."""
    s = np.asarray(scores, dtype=float)
    rows = []
    for t in ts:
        tau = percentile_threshold(random_distances, t)
        m = metrics.decision_metrics(s > tau, is_member)
        rows.append(
            {
                "t": float(t),
                "tau": tau,
                "f1": f1_score(m["precision"], m["recall"]),
                "acc": m["acc"],
                "precision": m["precision"],
                "recall": m["recall"],
            }
        )
    return rows


def table_csv(rows: list[dict[str, float]]) -> str:
    head = list(rows[0]) if rows else ["t", "tau", "f1", "acc", "precision", "recall"]
    lines = [",".join(head)] + [",".join(f"{r[k]:.6g}" for k in head) for r in rows]
    return "\n".join(lines) + "\n"


__all__ = [
    "check_percentiles",
    "f1_score",
    "percentile_threshold",
    "random_inputs",
    "table_csv",
    "threshold_table",
]
