"""Settings of the score-based attacks beyond I_B / I_A (keys under `attack.`).

Plain dataclasses (no lit_mia imports) so config.py can embed them in the schema.
Defaults follow CCS'19 (Song, Shokri, Mittal) §5.2 / Table 7, Shokri et al. S&P'17 /
Salem et al. NDSS'19 (ML-Leaks) and Carlini et al. S&P'22 (LiRA); see ../shared/REFERENCE.md §2.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class InferSettings:
    """`model_infer` / `confidence_infer` (CCS'19 Table 7): per-class inference on prediction
    vectors. features: benign | untargeted | targeted (k-1 targeted PGD examples per input,
    their prediction vectors concatenated)."""

    features: str = "targeted"
    n_train_per_class: int = 500  # members and as many non-members of each class (training)
    hidden: list[int] = field(default_factory=lambda: [200, 20])
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0


@dataclass
class ShadowAttackSettings:
    """`shadow` (Shokri 2017 / Salem ML-Leaks 2019): attack classifier on shadow models'
    prediction vectors. features: sorted (top_k largest, ML-Leaks) | label (label-conditioned:
    the full vector plus the one-hot label)."""

    n_models: int = 4
    features: str = "sorted"
    top_k: int = 3
    hidden: list[int] = field(default_factory=lambda: [64])
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 128


@dataclass
class LiraSettings:
    """`lira` (Carlini et al. S&P 2022). mode: online (IN and OUT Gaussians, needs
    n_shadow >= 2) | offline (OUT only, one-sided). augment: none | flip_shift (average phi over
    the flip/shift queries). farm: auto | vmap | loop (lit_mia/ensemble.py). Shadow models are
    cached under cache_dir keyed by everything that determines them."""

    mode: str = "online"
    n_shadow: int = 16
    augment: str = "none"
    fix_variance: bool = True
    farm: str = "auto"
    cache_dir: str = "mlruns/cache/shadow_farm"
    epochs: int | None = None  # None: trainer.max_epochs


__all__ = ["InferSettings", "ShadowAttackSettings", "LiraSettings"]
