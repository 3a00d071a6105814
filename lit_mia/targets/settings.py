"""Settings of every training regime (the `target` config section), importable without torch.

One dataclass per regime, with the paper's defaults and a `validate(section, cfg)` classmethod
that raises a one-line ConfigError naming the key; the regime's LightningModule (its module
beside this one) names its class as `Settings`, and lit_mia/config/ builds the `target` schema from
`SETTINGS` below (lit_mia/targets/__init__.py) before anything imports torch.

    CountermeasureSettings   temperature, DA, L1/L2, DP-SGD: every regime (regularizers.py, dp.py)
    TargetSettings           natural training (natural.py) and the shared optimiser keys (base.py)
    PerturbedSettings        regimes that train on perturbed inputs
    PGDSettings              pgd, mixed PGD (adversarial.py)
    TradesSettings           trades (trades.py)
    DistSettings             dist (distributional.py)
    VerifiableSettings       ibp, diffai, dual (verifiable.py): IBPSettings, DiffAISettings,
                             DualSettings
"""

from __future__ import annotations

from dataclasses import dataclass

from lit_mia.errors import ConfigError, require


@dataclass
class CountermeasureSettings:
    """Regime-independent countermeasures, all off by default (keys under `target.`).

    temperature: prediction-time softmax temperature T (CCS'19 §7.2.1); da_weight: weight of
    the DA regulariser (CCS'19 §7.2.2, 0 = off); l1, l2: lambda of sum |w| and sum w^2 (Li &
    Zhang CCS'21 §6: 1e-4..5e-3 and 0.01..0.1); dp_noise_multiplier: DP-SGD noise std /
    clipping norm (0 = off; Li & Zhang: 0.1, 0.5, 1.1), dp_max_grad_norm: per-sample clipping
    norm C, dp_delta: delta of the reported (epsilon, delta) (dp.py)."""

    temperature: float = 1.0
    da_weight: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    dp_noise_multiplier: float = 0.0
    dp_max_grad_norm: float = 1.0
    dp_delta: float = 1e-5

    @classmethod
    def validate(cls, t, cfg) -> None:
        """ConfigError naming the key for out-of-range countermeasures in section `t`; DP-SGD
        excludes DA / L1 / L2 and needs one process (cfg.trainer)."""
        require(t.temperature > 0, "target.temperature", "> 0", t.temperature)
        for k in ("da_weight", "l1", "l2", "dp_noise_multiplier"):
            require(t[k] >= 0, f"target.{k}", ">= 0", t[k])
        require(t.dp_max_grad_norm > 0, "target.dp_max_grad_norm", "> 0", t.dp_max_grad_norm)
        require(0 < t.dp_delta < 1, "target.dp_delta", "in (0, 1)", t.dp_delta)
        if t.dp_noise_multiplier > 0:
            for k in ("da_weight", "l1", "l2"):
                require(
                    t[k] == 0, f"target.{k}", "0 with DP-SGD (target.dp_noise_multiplier > 0)", t[k]
                )
            tr = cfg.trainer
            one = tr.devices in (1, "1") and tr.strategy in ("auto", "single_device")
            require(
                one, "trainer.devices", "1 with strategy auto for DP-SGD (one process)", tr.devices
            )

    @property
    def dp(self) -> bool:
        return self.dp_noise_multiplier > 0

    @property
    def penalised(self) -> bool:
        """Whether any loss term is added to the regime's loss."""
        return self.da_weight > 0 or self.l1 > 0 or self.l2 > 0


OPTIMIZERS = ("adam", "sgd")


@dataclass
class TargetSettings(CountermeasureSettings):
    """Settings of every regime (keys `target.*`); as they stand, natural training (CCS'19
    eq. 1; released code: Adam, lr 1e-3). eps / steps / step_size / random_start are the PGD of
    the DA regulariser for regimes without adversarial examples of their own (natural: off)."""

    name: str = "natural"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    eps: float = 0.0
    steps: int = 0
    step_size: float = 0.0
    random_start: bool = True

    @classmethod
    def makes_adversarial(cls, t) -> bool:
        """Whether the regime's adversarial examples perturb anything under section `t` (DA
        needs them). Default: PGD at t.eps with t.steps of t.step_size."""
        return t.eps > 0 and t.steps >= 1 and t.step_size > 0

    @classmethod
    def validate(cls, t, cfg) -> None:
        """ConfigError naming the key for an out-of-range knob of section `t` (cfg: the whole
        resolved config, for knobs whose range depends on the trainer)."""
        require(t.lr > 0, "target.lr", "> 0", t.lr)
        require(t.optimizer in OPTIMIZERS, "target.optimizer", "one of adam, sgd", t.optimizer)
        require(t.weight_decay >= 0, "target.weight_decay", ">= 0", t.weight_decay)
        require(0 <= t.momentum < 1, "target.momentum", "in [0, 1)", t.momentum)
        require(0 <= t.eps <= 1, "target.eps", "in [0, 1] (pixel space)", t.eps)
        require(t.steps >= 0, "target.steps", ">= 0", t.steps)
        require(t.step_size >= 0, "target.step_size", ">= 0", t.step_size)
        super().validate(t, cfg)
        if t.da_weight > 0 and not cls.makes_adversarial(t):
            require(
                False,
                "target.da_weight",
                f"0 for target {t.name} with these settings: DA regularisation needs adversarial "
                "examples (target.eps > 0, steps >= 1, step_size > 0; dist: steps >= 1, "
                "dist_step_size > 0)",
                t.da_weight,
            )


@dataclass
class PerturbedSettings(TargetSettings):
    """Regimes that train on perturbed inputs: the CCS'19 released Fashion-MNIST training PGD,
    eps 0.1, 8 steps of 0.02, random start (CIFAR-10: 8/255, 10, 2/255;
    docs/reference/paper-defaults.md#robust-training)."""

    eps: float = 0.1
    steps: int = 8
    step_size: float = 0.02

    @classmethod
    def validate(cls, t, cfg) -> None:
        super().validate(t, cfg)
        if t.eps > 0:
            require(t.steps >= 1, "target.steps", f">= 1 for target {t.name} with eps > 0", t.steps)


RATIO_MODES = ("fixed", "batch")


@dataclass
class PGDSettings(PerturbedSettings):
    """`pgd`: the training PGD of PerturbedSettings on a fraction `ratio` of the training set
    (CCS'19 Table 5; 1 = every point), a fixed seeded subset (`ratio_mode: fixed`) or a random
    fraction of every batch (`batch`)."""

    name: str = "pgd"
    ratio: float = 1.0
    ratio_mode: str = "fixed"

    @classmethod
    def validate(cls, t, cfg) -> None:
        super().validate(t, cfg)
        require(0 <= t.ratio <= 1, "target.ratio", "in [0, 1]", t.ratio)
        modes = ", ".join(RATIO_MODES)
        require(t.ratio_mode in RATIO_MODES, "target.ratio_mode", f"one of {modes}", t.ratio_mode)


@dataclass
class TradesSettings(PerturbedSettings):
    """`trades`: the KL-maximising inner PGD of PerturbedSettings and the KL weight beta
    (CCS'19 released code, FMNIST: 1.0)."""

    name: str = "trades"
    beta: float = 1.0

    @classmethod
    def validate(cls, t, cfg) -> None:
        super().validate(t, cfg)
        require(t.beta >= 0, "target.beta", ">= 0", t.beta)


@dataclass
class DistSettings(PerturbedSettings):
    """`dist`: `steps` ascent steps of size `dist_step_size` (FMNIST: 8 of 1.0); eps is only
    the evaluation radius."""

    name: str = "dist"
    dist_step_size: float = 1.0

    @classmethod
    def makes_adversarial(cls, t) -> bool:
        return t.steps >= 1 and t.dist_step_size > 0

    @classmethod
    def validate(cls, t, cfg) -> None:
        super().validate(t, cfg)
        require(t.dist_step_size >= 0, "target.dist_step_size", ">= 0", t.dist_step_size)


NORM_TYPES = ("l1_median", "l1")  # with bounded_input only the L_inf-ball estimators apply


@dataclass
class VerifiableSettings(PerturbedSettings):
    """Verifiable regimes: the eps schedule eps_start -> eps (0.1) linearly over
    [warmup_epochs, warmup_epochs + ramp_epochs] (fractional epochs, counted in optimizer
    steps), a gradient-norm clip (0 = off). steps / step_size are only the DA regulariser's PGD.
    """

    eps_start: float = 0.0
    warmup_epochs: float = 0.0
    ramp_epochs: float = 0.0
    grad_clip: float = 0.0

    @classmethod
    def validate(cls, t, cfg) -> None:
        """Also: warmup + ramp <= trainer.max_epochs, eps_start in [0, eps], grad_clip >= 0."""
        super().validate(t, cfg)
        for k in ("warmup_epochs", "ramp_epochs"):
            require(t[k] >= 0, f"target.{k}", ">= 0", t[k])
        end, max_epochs = t.warmup_epochs + t.ramp_epochs, cfg.trainer.max_epochs
        if end > max_epochs:
            raise ConfigError(
                f"target.warmup_epochs + target.ramp_epochs must be <= trainer.max_epochs "
                f"({max_epochs}) so training reaches the full eps, got {t.warmup_epochs} + "
                f"{t.ramp_epochs} = {end}"
            )
        require(0 <= t.eps_start <= t.eps, "target.eps_start", f"in [0, target.eps = {t.eps}]",
                t.eps_start)  # fmt: skip
        require(t.grad_clip >= 0, "target.grad_clip", ">= 0 (0 = off)", t.grad_clip)


@dataclass
class IBPSettings(VerifiableSettings):
    """`ibp` (Gowal et al. 2018): clean-CE weight kappa kappa_start (1) -> kappa_end (0.5) over
    the ramp; released FMNIST schedule 8,000 + 30,000 steps, here 2 + 8 epochs."""

    name: str = "ibp"
    warmup_epochs: float = 2.0
    ramp_epochs: float = 8.0
    kappa_start: float = 1.0
    kappa_end: float = 0.5

    @classmethod
    def validate(cls, t, cfg) -> None:
        super().validate(t, cfg)
        for k in ("kappa_start", "kappa_end"):
            require(0 <= t[k] <= 1, f"target.{k}", "in [0, 1]", t[k])


@dataclass
class DiffAISettings(VerifiableSettings):
    """`diffai` (Mirman et al. 2018, box domain): FMNIST ramps the width over 30 epochs after
    epoch 20; here 4 + 6 epochs."""

    name: str = "diffai"
    warmup_epochs: float = 4.0
    ramp_epochs: float = 6.0


@dataclass
class DualSettings(VerifiableSettings):
    """`dual` (Wong & Kolter 2018; Wong et al. 2018): eps 0.003 -> eps over 10 epochs (FMNIST:
    20), proj 20 random projections with the l1_median estimator (null: exact bound),
    verify_proj for ver acc / I_V (null: exact, sound), gradient clip 1."""

    name: str = "dual"
    eps_start: float = 0.003
    ramp_epochs: float = 10.0
    grad_clip: float = 1.0
    proj: int | None = 20
    norm_type: str = "l1_median"
    verify_proj: int | None = None

    @classmethod
    def validate(cls, t, cfg) -> None:
        super().validate(t, cfg)
        require(t.proj is None or t.proj >= 1, "target.proj", "null (exact bound) or >= 1", t.proj)
        require(t.verify_proj is None or t.verify_proj >= 1, "target.verify_proj",
                "null (exact) or >= 1", t.verify_proj)  # fmt: skip
        norms = ", ".join(NORM_TYPES)
        require(t.norm_type in NORM_TYPES, "target.norm_type", f"one of {norms}", t.norm_type)
