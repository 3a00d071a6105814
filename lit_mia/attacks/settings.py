"""The shared attack settings (`attack.*`, `AttackSettings`). Each attack's own section
(`attack.lira`, `attack.boundary`, ...) is a dataclass in its attack's module, declared by its
registry entry (`Attack.settings`); config.py assembles the `attack` section from both.
Defaults follow CCS'19 (Song, Shokri, Mittal) §5.2 and the released code (REFERENCE.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lit_mia.errors import require, unknown_name
from lit_mia.metrics.slicing import SLICE_KINDS
from lit_mia.perturb.pgd import AttackPGD

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
    alpha: float = 0.05
    delta: float = 1e-5
    slicing: list[str] = field(default_factory=lambda: ["class", "correctness"])
    slice_min: int = 20
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


__all__ = ["AttackSettings"]
