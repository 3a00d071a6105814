"""Settings of the attacks (keys under `attack.`): the shared ones (`AttackSettings`) and those
of the score-based attacks beyond I_B / I_A, each registered by its attack's registry entry
(`Attack.settings`), from which config.py assembles the `attack` section.
Defaults follow CCS'19 (Song, Shokri, Mittal) §5.2 / Table 7, Shokri et al. S&P'17 /
Salem et al. NDSS'19 (ML-Leaks) and Carlini et al. S&P'22 (LiRA); see ../shared/REFERENCE.md §2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lit_mia.errors import require
from lit_mia.perturb.pgd import AttackPGD

CALIBRATIONS = ("per_class", "global")


@dataclass
class AttackSettings(AttackPGD):
    """Shared attack settings (`attack.*`): the attack-time PGD of AttackPGD (CCS'19 released
    code: eps 0.1, 20 steps of 2.5*eps/20, no random start) used by I_A, the inference
    features and the leakage callback; evaluation size and batching; calibration of thresholds
    on shadow model 0 (`*_calibrated`, per class: Song & Mittal 2021); bootstrap CIs; KL bins;
    ia_sweep's eps list (CCS'19 Fig. 5); the leakage-over-training callback (every N epochs on
    leakage_n members and as many non-members; 0 = off). `name` selects conf/attack/<name>.yaml
    (CLI `attack=NAME`, which also sets `attacks=[NAME]`)."""

    name: str = "ib"
    batch_size: int = 500
    n_eval: int | None = None
    kl_bins: int = 50
    calibrate: bool = True
    calibration: str = "per_class"
    bootstrap: int = 200
    ci_level: float = 0.95
    eps_list: list[float] = field(default_factory=lambda: [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3])
    leakage_every: int = 0
    leakage_n: int = 200

    @classmethod
    def validate(cls, a, cfg) -> None:
        """ConfigError naming the key for an out-of-range shared attack setting."""
        require(0 <= a.eps <= 1, "attack.eps", "in [0, 1] (pixel space)", a.eps)
        require(a.steps >= 0, "attack.steps", ">= 0", a.steps)
        require(a.step_size is None or a.step_size >= 0, "attack.step_size", ">= 0 or null",
                a.step_size)  # fmt: skip
        require(a.batch_size >= 1, "attack.batch_size", ">= 1", a.batch_size)
        require(a.n_eval is None or a.n_eval >= 1, "attack.n_eval", ">= 1 or null", a.n_eval)
        require(a.kl_bins >= 2, "attack.kl_bins", ">= 2", a.kl_bins)
        require(a.calibration in CALIBRATIONS, "attack.calibration", "one of per_class, global",
                a.calibration)  # fmt: skip
        require(a.bootstrap == 0 or a.bootstrap >= 10, "attack.bootstrap", "0 (off) or >= 10",
                a.bootstrap)  # fmt: skip
        require(0 < a.ci_level < 1, "attack.ci_level", "in (0, 1)", a.ci_level)
        require(a.leakage_every >= 0, "attack.leakage_every", ">= 0", a.leakage_every)
        require(a.leakage_n >= 1, "attack.leakage_n", ">= 1", a.leakage_n)
        if a.calibrate:
            require(cfg.data.n_shadow >= 2, "data.n_shadow",
                    ">= 2 when attack.calibrate=true (shadow model for acc_calibrated)",
                    cfg.data.n_shadow)  # fmt: skip


@dataclass
class InferSettings:
    """`model_infer` / `confidence_infer` (CCS'19 §3.3.1, §5.2.5, Table 7): per-class inference
    on prediction vectors. For every class c, `n_train_per_class` members and as many
    non-members of class c train the attack (CCS'19: 500 + 500 on CIFAR-10), the rest of that
    class's members and non-members (balanced) test it.

    features: kinds to compare, the first is logged unprefixed, every one as `<kind>/<metric>`:
      benign      F(x), the prediction vector on the benign input
      untargeted  F(x_adv), untargeted PGD at attack.eps (the I_A example)
      targeted    the k-1 vectors F(x'_t) of targeted PGD towards every other class t,
                  concatenated (CCS'19 §5.2.5); with include_benign also F(x)
    confidence_infer thresholds F(.)_y of the benign / untargeted kinds (the paper: "targeted"
    has no single confidence, §3.3.1) and skips `targeted`.
    hidden: inference MLP hidden sizes (CCS'19 §5.2.5: 200, 20, then the 2-way output)."""

    features: list[str] = field(default_factory=lambda: ["targeted", "untargeted", "benign"])
    include_benign: bool = False  # targeted: append the benign vector F(x) to the k-1 vectors
    # members and as many non-members of each class that train its attack; CCS'19: 500 of
    # CIFAR-10's 5,000 per class; 50 fits the default mnist5k split (84..118 members per class)
    n_train_per_class: int = 50
    hidden: list[int] = field(default_factory=lambda: [200, 20])
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0


@dataclass
class ShadowAttackSettings:
    """`shadow` (Shokri et al. S&P'17 / Salem et al. NDSS'19, ML-Leaks): one attack classifier
    trained on n_models shadow models' prediction vectors (their in half = member, out half =
    non-member), applied to the target. features: sorted (the top_k largest probabilities in
    descending order, ML-Leaks' adversary 1 uses top 3) | label (label-conditioned: the full
    vector plus the one-hot true label, Shokri's per-class information in one model).
    hidden: attack MLP hidden sizes (ML-Leaks: one hidden layer of 64)."""

    n_models: int = 4
    features: str = "sorted"
    top_k: int = 3
    hidden: list[int] = field(default_factory=lambda: [64])
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 128


@dataclass
class LiraSettings:
    """`lira` (Carlini et al. S&P 2022, lit_mia/attacks/lira.py).

    mode: online (IN and OUT Gaussians per example, Algorithm 1) | offline (OUT only,
    one-sided test, §VI-A); both need n_shadow >= 2 (models come in complementary pairs so
    every evaluation point is IN for half of them). n_shadow: 16, a CPU-sized count (the paper
    uses 64-256; fix_variance is its advice below ~64). augment: none | flip | shift |
    flip_shift (phi averaged over 1 / 2 / 9 / 18 queries). farm: auto | vmap | loop
    (lit_mia/shadow_farm.py; auto times both). cache_dir: trained shadow models, keyed by
    everything that determines them (lit_mia/cache.py); "" = no cache. epochs: shadow training
    epochs, None = trainer.max_epochs (the target's)."""

    mode: str = "online"
    n_shadow: int = 16
    augment: str = "none"
    fix_variance: bool = True
    farm: str = "auto"
    cache_dir: str = "mlruns/cache/shadow_farm"
    epochs: int | None = None  # None: trainer.max_epochs


__all__ = ["AttackSettings", "InferSettings", "ShadowAttackSettings", "LiraSettings"]
