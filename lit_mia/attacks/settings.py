"""The attack settings, importable without torch: the shared `attack.*` keys
(`AttackSettings`) and the sections of the membership attacks (`attack.infer`, `attack.shadow`,
`attack.lira`, `attack.rmia`, `attack.ref_budget`, `attack.dp_audit`); the label-only sections
are in label_only/settings.py, `updates` in attacks/update_leakage/settings.py. Each registry entry
(attacks/registry.py) declares the sections it reads (`Attack.settings`), and config.py
assembles the `attack` section from them before anything imports torch; each attack's module
re-exports its class.
Defaults follow CCS'19 (Song, Shokri, Mittal) §5.2 and the released code
(docs/reference/paper-defaults.md#score-based-membership-inference).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lit_mia.errors import require, unknown_name
from lit_mia.metrics.slicing import SLICE_KINDS
from lit_mia.perturb.settings import AttackPGD

CALIBRATIONS = ("per_class", "global")


@dataclass
class AttackSettings(AttackPGD):
    """Shared attack settings (`attack.*`): the attack-time PGD of AttackPGD (CCS'19 released
    code: eps 0.1, 20 steps of 2.5*eps/20, no random start) used by I_A, the inference
    features and the leakage callback; evaluation size and batching; calibration of thresholds
    on shadow model 0 (`*_calibrated`, per class: Song & Mittal 2021); bootstrap CIs; KL bins;
    alpha / delta of the ε and Gaussian-DP lower bounds (`eps_lb`, `mu_lb`: confidence 1 -
    alpha, (ε, delta)-DP; metrics/privacy.py); slicing: per-slice metrics of every membership
    attack (`class`, `correctness`; [] = off) with at least slice_min members and non-members
    per slice (metrics/slicing.py);
    ia_sweep's eps list (CCS'19 Fig. 5); the leakage-over-training callback (every N epochs on
    leakage_n members and as many non-members; 0 = off); placebo: run every score attack against
    shadow model 0 too, a model trained like the target that never saw the evaluation members,
    and warn when it is not at chance (attacks/placebo.py). `name` selects conf/attack/<name>.yaml
    (CLI `attack=NAME`, which also sets `attacks=[NAME]`)."""

    name: str = "ib"
    batch_size: int = 500
    n_eval: int | None = None
    kl_bins: int = 50
    calibrate: bool = True
    calibration: str = "per_class"
    bootstrap: int = 200
    ci_level: float = 0.95
    alpha: float = 0.05
    delta: float = 1e-5
    slicing: list[str] = field(default_factory=lambda: ["class", "correctness"])
    slice_min: int = 20
    eps_list: list[float] = field(default_factory=lambda: [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3])
    leakage_every: int = 0
    leakage_n: int = 200
    placebo: bool = True

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
        require(0 < a.alpha < 1, "attack.alpha", "in (0, 1)", a.alpha)
        require(0 < a.delta < 1, "attack.delta", "in (0, 1)", a.delta)
        for kind in a.slicing:
            if kind not in SLICE_KINDS:
                raise unknown_name("slice kind (in attack.slicing)", kind, SLICE_KINDS)
        require(a.slice_min >= 1, "attack.slice_min", ">= 1", a.slice_min)
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
    """`attack.lira` (Carlini et al. S&P 2022). mode: online (IN and OUT Gaussians per
    example, Algorithm 1) | offline (OUT only, §VI-A); n_shadow >= 2 (complementary pairs:
    every point IN for half): 16 on CPU (paper 64-256; fix_variance, its advice below ~64).
    augment: none | flip | shift | flip_shift (1 / 2 / 9 / 18 queries). farm: auto | vmap |
    loop (models/shadow_farm.py; auto times both). cache_dir: shadow models keyed by everything that
    determines them (models/cache.py); "" = none. epochs: None = trainer.max_epochs."""

    mode: str = "online"
    n_shadow: int = 16
    augment: str = "none"
    fix_variance: bool = True
    farm: str = "auto"
    cache_dir: str = "mlruns/cache/shadow_farm"
    epochs: int | None = None


@dataclass
class RmiaSettings:
    """`attack.rmia` (Zarifzadeh et al. ICML 2024). mode: online (IN and OUT references) |
    offline (OUT only, linear correction with `a`); n_references: reference models, 1..256
    (offline with a = null needs >= 3: reference 0 is the stand-in target); a: offline
    correction in [0, 1], null = chosen on reference model 0; gamma > 0: the pairwise
    likelihood-ratio threshold; population: population points z (from split.shadow, outside
    the reference models' pool); augment: none | flip | shift | flip_shift queries."""

    mode: str = "online"
    n_references: int = 16
    a: float | None = None
    gamma: float = 1.0
    population: int = 1000
    augment: str = "none"


@dataclass
class RefBudgetSettings:
    """`attack.ref_budget`: max_references N (budgets 1, 2, 4, ... and N), 2..256."""

    max_references: int = 16


@dataclass
class DpAuditSettings:
    """`attack.dp_audit`: canaries m (<= the target's member count and split.shadow), kind
    mislabel | natural, guess_fraction in (0, 1] (share of canaries the one-run attacker
    guesses on, half IN half OUT), epochs (None = trainer.max_epochs)."""

    canaries: int = 500
    kind: str = "mislabel"
    guess_fraction: float = 0.2
    epochs: int | None = None


__all__ = [
    "AttackSettings",
    "DpAuditSettings",
    "InferSettings",
    "LiraSettings",
    "RefBudgetSettings",
    "RmiaSettings",
    "ShadowAttackSettings",
]
