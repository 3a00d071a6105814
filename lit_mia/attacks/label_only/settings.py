"""Settings of the label-only attacks (`attack.transfer`, `attack.boundary`,
`attack.thresholds`, `attack.augmentation`, `attack.cert`), importable without torch: the
registry entries (attacks/registry.py) declare them and lit_mia/config/ builds the schema from them.
Defaults follow Li & Zhang CCS'21 and its released code; each field is described in its
class and used by the attack module named in the class docstring."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TransferSettings:
    """`transfer` (Li & Zhang §3, Algorithm 1): a shadow model trained on a pool relabelled
    by the target; score = -CE of the shadow model at the true label."""

    net: str = ""  # architecture of the shadow model; "" = the target's net.name
    width: float = 0.0  # its width; 0 = the target's net.width
    epochs: int = 20
    lr: float = 1e-3  # Adam (the paper's target and shadow training)
    batch_size: int = 128
    pool: str = "shadow"  # split set relabelled by the target (must not hold eval samples)


@dataclass
class BoundarySettings:
    """`boundary` (Li & Zhang §4, Algorithm 2): HopSkipJump distance as the membership score."""

    norm: str = "2"  # the norm HopSkipJump minimises: 2 | inf
    score_norm: str = "2"  # distance behind `auc` / `acc_best`: 0 | 1 | 2 | inf (all logged)
    max_iter: int = 50
    max_eval: int = 10000
    init_eval: int = 100
    init_size: int = 100
    budget: int = 2500  # queries per sample (>= lit_mia.perturb.hopskipjump.min_queries)
    budgets: list[int] = field(default_factory=list)  # AUC vs queries (Fig. 9), each <= budget
    n_eval: int = 200  # members and as many non-members (first n of the evaluation sets)
    query_rows: int = 1024  # rows per oracle call (LeNet on CPU is fastest near 1024 rows)


@dataclass
class ThresholdSettings:
    """Algorithm 3: thresholds from perturbed uniformly random inputs (part of `boundary`)."""

    n_random: int = 100  # 0 = off
    percentiles: list[float] = field(default_factory=lambda: [30.0, 40.0, 50.0, 60.0, 70.0, 80.0])


@dataclass
class AugmentationSettings:
    """`augmentation` (Choquette-Choo et al. 2021): fraction of augmented copies still given
    the true label. Copies: the input, its horizontal flip (`flip`), every shift (i, j) with
    1 <= |i| + |j| <= max_shift (zero fill), n_noise Gaussian draws of std noise_std."""

    flip: bool = False  # digits are not flip-invariant; CIFAR-style data: true
    max_shift: int = 2
    n_noise: int = 10
    noise_std: float = 0.05


@dataclass
class CertSettings:
    """`cert_radius` (Li & Zhang Appendix A.2, Cohen et al. 2019 CERTIFY): certified L2 radius
    of the Gaussian-smoothed target from N0 + N label queries per sample."""

    sigma: float = 0.25
    n0: int = 100
    n: int = 100000
    alpha: float = 0.001
    n_eval: int = 200  # members and as many non-members
    query_rows: int = 1024  # rows per oracle call


__all__ = [
    "AugmentationSettings",
    "BoundarySettings",
    "CertSettings",
    "ThresholdSettings",
    "TransferSettings",
]
