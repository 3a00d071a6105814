"""Settings of the label-only attacks (keys under `attack.`): Li & Zhang CCS'21.

Plain dataclasses (no lit_mia imports) so config.py can embed them in the schema.
Defaults from ../shared/REFERENCE.md §3 (released code: ART HopSkipJump, norm 2, max_iter 50,
max_eval 10000, init_eval 100, init_size 100; randomized smoothing sigma 0.25, N0 100,
N 100000, alpha 0.001).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BoundarySettings:
    norm: str = "2"  # HopSkipJump's norm: 2 | inf
    max_iter: int = 50
    max_eval: int = 10000
    init_eval: int = 100
    init_size: int = 100
    budget: int = 2500  # queries per sample
    budgets: list[int] = field(default_factory=list)  # query-budget sweep (Fig. 9); [] = off
    n_eval: int = 200  # members and as many non-members


@dataclass
class TransferSettings:
    net: str = "lenet_mnist"
    width: float = 1.0
    epochs: int = 20


@dataclass
class AugmentationSettings:
    n_flips: int = 1
    max_shift: int = 2
    n_noise: int = 10
    noise_std: float = 0.05


@dataclass
class CertSettings:
    sigma: float = 0.25
    n0: int = 100
    n: int = 100000
    alpha: float = 0.001


@dataclass
class ThresholdSettings:
    """Algorithm 3: thresholds from perturbed uniformly random inputs."""

    n_random: int = 100
    percentiles: list[float] = field(default_factory=lambda: [30.0, 40.0, 50.0, 60.0, 70.0, 80.0])


__all__ = [
    "BoundarySettings",
    "TransferSettings",
    "AugmentationSettings",
    "CertSettings",
    "ThresholdSettings",
]
