"""Configuration: structured dataclasses, YAML groups under conf/, CLI `key=value` overrides.

Composition (later wins)::

    schema defaults (the dataclasses below)
      -> conf/<group>/<name>.yaml   for each group: data net target attack trainer
      -> the experiment file's section for that group
      -> CLI overrides (`target.eps=0.2`, or the group shorthand `target=pgd`)

A group's YAML is chosen by its `name` key (CLI `g.name` / `g=NAME`, else the experiment's, else
the schema default), so `target.name=pgd` loads conf/target/pgd.yaml's defaults. Top-level keys
(`seed`, `attacks`, `targets`, `tracking.*`) are schema -> experiment -> CLI. Every user error
(unknown key or name, wrong type, value out of range) is a one-line `ConfigError` naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lit_mia.attacks.label_only.settings import (
    AugmentationSettings,
    BoundarySettings,
    CertSettings,
    ThresholdSettings,
    TransferSettings,
)
from lit_mia.attacks.settings import InferSettings, LiraSettings, ShadowAttackSettings
from lit_mia.errors import ConfigError, unknown_name
from lit_mia.targets import parse_target_entry, target_names
from lit_mia.updates_leak.settings import UpdatesSettings

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
SWEEPS_DIR = ROOT / "sweeps"
GROUPS = ("data", "net", "target", "attack", "trainer")


@dataclass
class TrackingConfig:
    """Where MLflow writes. MLflow 3 refuses a bare ./mlruns file store: SQLite inside mlruns/."""

    uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_root: str | None = None  # None: beside the SQLite file (mlruns/artifacts)
    experiment: str = "lit_mia"
    log_checkpoint: bool = True


@dataclass
class DataConfig:
    """Dataset and membership split sizes (counts of samples; see data/splits.py)."""

    name: str = "mnist5k"
    root: str = "data_root"
    download: bool = False
    n_members: int = 1000
    n_nonmembers: int = 1000
    n_validation: int = 250
    n_shadow: int = 2000
    n_probe: int = 0
    batch_size: int = 128
    num_workers: int = 0
    augment: str = "none"  # training batches only: none | flip_shift | shift (datamodule.py)


@dataclass
class NetConfig:
    """Architecture from lit_mia.nets with its capacity knob `width` (channel multiplier)."""

    name: str = "fmnist_cnn"
    width: float = 1.0
    depth: int | None = None
    dropout: float = 0.0
    activation: str = "relu"


@dataclass
class TargetConfig:
    """Training regime of the target (and of its shadow models).

    PGD fields follow Madry et al. / the CCS'19 released code (FMNIST: eps 0.1, 8 steps,
    step 0.02, random start). `ratio` is the CCS'19 Table 5 mixed-PGD fraction r of the training
    set (a fixed subset chosen from the seed) that contributes the robust loss; `ratio_mode=batch`
    instead draws a random fraction r of every batch (a different experiment, see REFERENCE.md).
    """

    name: str = "natural"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    eps: float = 0.0
    steps: int = 0
    step_size: float = 0.0
    random_start: bool = True
    ratio: float = 1.0
    ratio_mode: str = "fixed"
    # Verifiable regimes (ibp, diffai, dual; targets/verifiable.py). eps ramps eps_start -> eps
    # linearly over [warmup_epochs, warmup_epochs + ramp_epochs], counted in optimizer steps.
    eps_start: float = 0.0  # eps before/at the start of the ramp (dual: 0.003, Wong-Kolter)
    warmup_epochs: float = 0.0  # epochs at eps_start before the ramp (may be fractional)
    ramp_epochs: float = 0.0  # length of the linear ramp in epochs (0: jump to eps)
    kappa_start: float = 1.0  # ibp: weight of the clean CE at the start of the ramp (Gowal)
    kappa_end: float = 0.5  # ibp: weight of the clean CE after the ramp
    proj: int | None = 50  # dual: random projections (Wong et al. 2018); null = exact bound
    norm_type: str = "l1_median"  # dual: l1_median (projected estimate) or l1 (exact)
    verify_proj: int | None = None  # dual: projections for ver acc / I_V; null = exact, sound
    grad_clip: float = 0.0  # gradient-norm clip of the verifiable targets, 0 = off (dual: 1)
    # TRADES (targets/trades.py): CE(x) + beta * KL(F(x) || F(x_adv)); eps/steps/step_size above
    beta: float = 1.0
    # Sinha distributional (targets/distributional.py): ascent step a over `steps` steps; eps is
    # then only the evaluation radius
    dist_step_size: float = 1.0
    # Countermeasures, any regime (targets/regularizers.py, targets/dp.py); all off by default
    temperature: float = 1.0  # prediction-time softmax temperature T (CCS'19 §7.2.1)
    da_weight: float = 0.0  # DA regulariser weight (CCS'19 §7.2.2): adv examples of the regime,
    #   or PGD at eps/steps/step_size for natural and verifiable regimes
    l1: float = 0.0  # lambda * sum|w| (Li & Zhang: 1e-4..5e-3)
    l2: float = 0.0  # lambda * sum w^2 (Li & Zhang: 0.01..0.1); weight_decay is separate
    dp_noise_multiplier: float = 0.0  # DP-SGD via opacus, 0 = off (Li & Zhang: 0.1, 0.5, 1.1)
    dp_max_grad_norm: float = 1.0  # DP-SGD per-sample gradient clipping norm
    dp_delta: float = 1e-5  # delta of the logged (train/dp_epsilon, delta)


@dataclass
class AttackConfig:
    """Shared attack settings. Attack-time PGD is the CCS'19 released one: 20 steps,
    step 2.5*eps/20 (`step_size: null`), no random start."""

    name: str = "ib"
    eps: float = 0.1
    steps: int = 20
    step_size: float | None = None
    random_start: bool = False
    batch_size: int = 500
    n_eval: int | None = None
    kl_bins: int = 50
    calibrate: bool = True  # thresholds chosen on shadow models -> *_calibrated
    calibration: str = "per_class"  # per_class (Song & Mittal 2021) | global
    bootstrap: int = 200  # bootstrap resamples for *_ci_low / *_ci_high; 0 = off
    ci_level: float = 0.95
    eps_list: list[float] = field(default_factory=lambda: [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3])
    leakage_every: int = 0  # leakage-over-training callback every N epochs; 0 = off
    leakage_n: int = 200  # members and as many non-members evaluated by the callback
    infer: InferSettings = field(default_factory=InferSettings)
    shadow: ShadowAttackSettings = field(default_factory=ShadowAttackSettings)
    lira: LiraSettings = field(default_factory=LiraSettings)
    boundary: BoundarySettings = field(default_factory=BoundarySettings)
    transfer: TransferSettings = field(default_factory=TransferSettings)
    augmentation: AugmentationSettings = field(default_factory=AugmentationSettings)
    cert: CertSettings = field(default_factory=CertSettings)
    thresholds: ThresholdSettings = field(default_factory=ThresholdSettings)


@dataclass
class TrainerConfig:
    """Lightning Trainer settings: cpu (default), gpu, ddp."""

    name: str = "cpu"
    max_epochs: int = 20
    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    precision: str = "32-true"
    deterministic: Any = True  # true | false | "warn" (GPU kernels without a deterministic version)
    enable_progress_bar: bool = True
    log_every_n_steps: int = 10
    val_adv_steps: int = 10
    val_every_n_epochs: int = 1


@dataclass
class SweepConfig:
    """Optuna study settings; `storage: null` = SQLite at mlruns/optuna.db."""

    n_trials: int = 4
    storage: str | None = None
    study_name: str | None = None
    sampler: str = "tpe"
    seed: int = 0


@dataclass
class ExperimentConfig:
    """The resolved configuration of one `lit-mia run`."""

    name: str = "single"
    description: str = ""
    label: str = ""  # this target's entry in `targets` (run name); set by per_target
    seed: int = 0
    targets: list[str] = field(default_factory=list)
    attacks: list[str] = field(default_factory=lambda: ["ib", "ia"])
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    net: NetConfig = field(default_factory=NetConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    updates: UpdatesSettings = field(default_factory=UpdatesSettings)
    compare_by: str = (
        ""  # parent run: plot each attack's AUC against this key (e.g. data.n_members)
    )


GROUP_SCHEMAS = {
    "data": DataConfig,
    "net": NetConfig,
    "target": TargetConfig,
    "attack": AttackConfig,
    "trainer": TrainerConfig,
}


# ---------------------------------------------------------------- helpers
def _names_in(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def group_names(group: str) -> list[str]:
    """Names available for a config group (the YAML files under conf/<group>/)."""
    return _names_in(CONF_DIR / group)


def _read_yaml(path: Path) -> DictConfig:
    try:
        cfg = OmegaConf.load(path)
    except (OmegaConfBaseException, OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path} must hold a mapping at top level")
    return cfg


def resolve_file(spec: str, folder: Path, kind: str) -> Path:
    """A name under `folder` (without .yaml) or a path to a YAML file."""
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") or "/" in spec:
        if not p.is_file():
            raise ConfigError(f"{kind} file {spec!r} does not exist")
        return p
    candidate = folder / f"{spec}.yaml"
    if not candidate.is_file():
        raise unknown_name(kind, spec, _names_in(folder))
    return candidate


def parse_overrides(items: list[str]) -> list[tuple[str, str]]:
    """Split `key=value` strings; group shorthands `g=NAME` become `g.name=NAME`."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(c.isspace() for c in key) or key.startswith("."):
            raise ConfigError(f"cannot parse override {item!r}: expected key=value")
        if key in GROUPS:
            key = f"{key}.name"
        pairs.append((key, value))
    return pairs


def _dotlist(pairs: list[tuple[str, str]]) -> DictConfig:
    try:
        return OmegaConf.from_dotlist([f"{k}={v}" for k, v in pairs])
    except OmegaConfBaseException as e:
        raise ConfigError(f"cannot parse overrides: {e}") from None


def _merge(base: DictConfig, other: Any, where: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, other)
    except OmegaConfBaseException as e:
        raise ConfigError(_explain(e, where)) from None


def _explain(e: OmegaConfBaseException, where: str) -> str:
    key = getattr(e, "full_key", None) or ""
    msg = str(e).splitlines()[0]
    if "Key '" in msg and "not in" in msg:
        return f"unknown key {key!r} in {where}"
    if key:
        return f"{key}: {msg} (in {where})"
    return f"{msg} (in {where})"


# ---------------------------------------------------------------- loading
def load(experiment: str, overrides: list[str] | None = None) -> DictConfig:
    """Resolve an experiment (name under conf/experiment/ or YAML path) with CLI overrides."""
    path = resolve_file(experiment, CONF_DIR / "experiment", "experiment")
    exp = _read_yaml(path)
    pairs = parse_overrides(overrides or [])
    cli = _dotlist(pairs)
    schema = OmegaConf.structured(ExperimentConfig)
    cfg = _merge(schema, {"name": path.stem}, str(path))

    for group in GROUPS:
        name = OmegaConf.select(cli, f"{group}.name")
        if name is None:
            name = OmegaConf.select(exp, f"{group}.name")
        if name is None:
            name = cfg[group].name
        gpath = CONF_DIR / group / f"{name}.yaml"
        if not gpath.is_file():
            raise unknown_name(f"{group} name (key {group}.name)", name, group_names(group))
        cfg = _merge(cfg, {group: _read_yaml(gpath)}, str(gpath))
        cfg[group].name = str(name)

    cfg = _merge(cfg, exp, str(path))
    if OmegaConf.select(cli, "attack.name") is not None and "attacks" not in cli:
        cli.attacks = [str(cli.attack.name)]
    cfg = _merge(cfg, cli, "command-line overrides")
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(_explain(e, "interpolation")) from None
    validate(cfg)
    return cfg


def per_target(experiment: str, overrides: list[str] | None = None) -> list[DictConfig]:
    """One resolved config per target of the experiment (`targets`, else `target.name`).

    A `targets` entry is `NAME` or `NAME key=value ...`, e.g. `"pgd ratio=0.5"`: bare keys are
    inside `target`, dotted keys are full keys (`"natural data.n_members=500"`). Each entry is
    `load(experiment, overrides + [target.name=NAME, target.key=value ..., label=ENTRY])`, so
    conf/target/<NAME>.yaml supplies the regime's defaults, experiment/CLI keys apply on top and
    the entry's own keys last.
    """
    cfg = load(experiment, overrides)
    if not cfg.targets:
        return [cfg]
    out = []
    for entry in cfg.targets:
        name, extra = parse_target_entry(entry)
        keys = [kv if "." in kv.partition("=")[0] else f"target.{kv}" for kv in extra]
        pairs = [f"target.name={name}", *keys, f"label={entry}"]
        out.append(load(experiment, [*(overrides or []), *pairs]))
    return out


# ---------------------------------------------------------------- validation
def _check(cfg: DictConfig, key: str, ok: bool, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {allowed}, got {OmegaConf.select(cfg, key)!r}")


# Lightning's accepted `precision` strings (lightning_fabric.connector).
PRECISIONS = (
    "32-true",
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
    "64-true",
    "transformer-engine",
    "transformer-engine-float16",
    "32",
    "16",
    "bf16",
    "64",
)


def _check_devices(c: DictConfig) -> None:
    """Lightning `devices`: a count >= 1 or "auto"; on accelerators other than cpu also -1
    (all), an index list [0, 1] or an index string "0,1"."""
    dev, cpu = c.trainer.devices, c.trainer.accelerator == "cpu"
    if isinstance(dev, ListConfig):
        dev = list(dev)
    if isinstance(dev, bool):
        ok = False
    elif isinstance(dev, int):
        ok = dev >= 1 or (dev == -1 and not cpu)
    elif isinstance(dev, str):
        ok = (
            dev == "auto"
            or re.fullmatch(r"[1-9]\d*", dev) is not None
            or (not cpu and re.fullmatch(r"-1|(\d+,)+\d*", dev.replace(" ", "")) is not None)
        )
    elif isinstance(dev, list):
        ints = all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in dev)
        ok = not cpu and bool(dev) and ints
    else:
        ok = False
    allowed = "an int >= 1 or 'auto' (other accelerators than cpu: also -1 or a device list)"
    _check(c, "trainer.devices", ok, allowed)


def _check_countermeasures(c: DictConfig) -> None:
    """TRADES / dist knobs, countermeasures (temperature, DA, L1, L2, DP-SGD), augmentation."""
    from lit_mia.data.datamodule import AUGMENTATIONS
    from lit_mia.targets import TARGETS

    t = c.target
    _check(c, "target.beta", t.beta >= 0, ">= 0")
    _check(c, "target.dist_step_size", t.dist_step_size >= 0, ">= 0")
    _check(c, "target.temperature", t.temperature > 0, "> 0")
    for k in ("da_weight", "l1", "l2", "dp_noise_multiplier"):
        _check(c, f"target.{k}", t[k] >= 0, ">= 0")
    _check(c, "target.dp_max_grad_norm", t.dp_max_grad_norm > 0, "> 0")
    _check(c, "target.dp_delta", 0 < t.dp_delta < 1, "in (0, 1)")
    _check(c, "data.augment", c.data.augment in AUGMENTATIONS, f"one of {', '.join(AUGMENTATIONS)}")
    if t.da_weight > 0 and t.name in TARGETS and not TARGETS[t.name].makes_adversarial(t):
        _check(
            c,
            "target.da_weight",
            False,
            f"0 for target {t.name} with these settings: DA regularisation needs adversarial "
            "examples (target.eps > 0, steps >= 1, step_size > 0; dist: steps >= 1, "
            "dist_step_size > 0)",
        )
    if t.dp_noise_multiplier > 0:
        for k in ("da_weight", "l1", "l2"):
            _check(c, f"target.{k}", t[k] == 0, "0 with DP-SGD (target.dp_noise_multiplier > 0)")
        tr = c.trainer
        one = tr.devices in (1, "1") and tr.strategy in ("auto", "single_device")
        _check(c, "trainer.devices", one, "1 with strategy auto for DP-SGD (one process)")


def validate(cfg: DictConfig) -> None:
    """Range checks that types alone cannot express; names are checked by the registries."""
    from lit_mia.attacks.registry import ATTACKS as ALL_ATTACKS
    from lit_mia.targets import TARGETS

    c = cfg
    _check(c, "seed", c.seed >= 0, ">= 0")
    for k in ("n_members", "n_nonmembers"):
        _check(c, f"data.{k}", c.data[k] >= 1, ">= 1")
    for k in ("n_validation", "n_shadow", "n_probe", "num_workers"):
        _check(c, f"data.{k}", c.data[k] >= 0, ">= 0")
    _check(c, "data.batch_size", c.data.batch_size >= 1, ">= 1")
    _check(c, "net.width", c.net.width > 0, "> 0")
    _check(c, "net.depth", c.net.depth is None or c.net.depth >= 1, ">= 1 or null")
    _check(c, "net.dropout", 0 <= c.net.dropout < 1, "in [0, 1)")
    t = c.target
    _check(c, "target.lr", t.lr > 0, "> 0")
    _check(c, "target.optimizer", t.optimizer in ("adam", "sgd"), "one of adam, sgd")
    _check(c, "target.weight_decay", t.weight_decay >= 0, ">= 0")
    _check(c, "target.momentum", 0 <= t.momentum < 1, "in [0, 1)")
    _check(c, "target.eps", 0 <= t.eps <= 1, "in [0, 1] (pixel space)")
    _check(c, "target.steps", t.steps >= 0, ">= 0")
    _check(c, "target.step_size", t.step_size >= 0, ">= 0")
    _check(c, "target.ratio", 0 <= t.ratio <= 1, "in [0, 1]")
    _check(c, "target.ratio_mode", t.ratio_mode in ("fixed", "batch"), "one of fixed, batch")
    if t.name in TARGETS and getattr(TARGETS[t.name], "verifiable", False):
        from lit_mia.targets.verifiable import validate_schedule

        validate_schedule(t, c.trainer.max_epochs)
    if t.name in TARGETS and TARGETS[t.name].iterative and t.eps > 0:
        _check(c, "target.steps", t.steps >= 1, f">= 1 for target {t.name} with eps > 0")
    _check_countermeasures(c)
    a = c.attack
    _check(c, "attack.eps", 0 <= a.eps <= 1, "in [0, 1] (pixel space)")
    _check(c, "attack.steps", a.steps >= 0, ">= 0")
    _check(c, "attack.step_size", a.step_size is None or a.step_size >= 0, ">= 0 or null")
    _check(c, "attack.batch_size", a.batch_size >= 1, ">= 1")
    _check(c, "attack.n_eval", a.n_eval is None or a.n_eval >= 1, ">= 1 or null")
    _check(c, "attack.kl_bins", a.kl_bins >= 2, ">= 2")
    tr = c.trainer
    _check(c, "trainer.max_epochs", tr.max_epochs >= 1, ">= 1")
    _check(c, "trainer.val_adv_steps", tr.val_adv_steps >= 0, ">= 0")
    _check(c, "trainer.val_every_n_epochs", tr.val_every_n_epochs >= 1, ">= 1")
    valid_acc = ("cpu", "gpu", "cuda", "mps", "auto")
    _check(c, "trainer.accelerator", tr.accelerator in valid_acc, f"one of {', '.join(valid_acc)}")
    det = tr.deterministic
    _check(c, "trainer.deterministic", det in (True, False, "warn"), "true, false or warn")
    _check_devices(c)
    from pytorch_lightning.strategies import StrategyRegistry

    strategies = ("auto", *StrategyRegistry.available_strategies())
    _check(c, "trainer.strategy", tr.strategy in strategies, f"one of {', '.join(strategies)}")
    _check(c, "trainer.precision", tr.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}")
    for name in target_names(c):
        if name not in TARGETS:
            raise unknown_name("target (in targets)" if c.targets else "target", name, TARGETS)
    _check(
        c,
        "attack.calibration",
        a.calibration in ("per_class", "global"),
        "one of per_class, global",
    )
    _check(c, "attack.bootstrap", a.bootstrap == 0 or a.bootstrap >= 10, "0 (off) or >= 10")
    _check(c, "attack.ci_level", 0 < a.ci_level < 1, "in (0, 1)")
    _check(c, "attack.leakage_every", a.leakage_every >= 0, ">= 0")
    _check(c, "attack.leakage_n", a.leakage_n >= 1, ">= 1")
    if c.compare_by:
        numeric = OmegaConf.select(c, str(c.compare_by), default=None)
        ok = str(c.compare_by) in schema_keys() and isinstance(numeric, (int, float))
        _check(c, "compare_by", ok, "empty or a numeric config key such as data.n_members")
    if not c.attacks:
        valid = ", ".join(sorted(ALL_ATTACKS))
        raise ConfigError(f"attacks must name at least one attack; valid: {valid}")
    for name in c.attacks:
        if name not in ALL_ATTACKS:
            raise unknown_name("attack (in attacks)", name, ALL_ATTACKS)
    UPDATE_ATTACKS = {n for n, at in ALL_ATTACKS.items() if at.kind == "update_leakage"}
    kinds = {name in UPDATE_ATTACKS for name in c.attacks}
    if len(kinds) > 1:
        raise ConfigError(
            f"attacks mixes update-leakage attacks ({', '.join(sorted(UPDATE_ATTACKS))}) with "
            f"membership attacks: {list(c.attacks)}; run them as separate experiments"
        )
    for name in c.attacks:
        check = ALL_ATTACKS[name].check
        if check is not None:
            check(c)
    if c.attack.calibrate and c.data.n_shadow < 2:
        raise ConfigError(
            "data.n_shadow must be >= 2 when attack.calibrate=true (shadow model for "
            f"acc_calibrated), got {c.data.n_shadow}"
        )


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg)


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, str]:
    """Flat `a.b.c -> str(value)` for MLflow params."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    out: dict[str, str] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


def schema_keys() -> list[str]:
    """All dotted keys of the experiment schema (for docs and tests)."""
    return sorted(flatten(OmegaConf.structured(ExperimentConfig)))


__all__ = [
    "ExperimentConfig",
    "SweepConfig",
    "load",
    "per_target",
    "target_names",
    "validate",
    "flatten",
    "parse_overrides",
    "resolve_file",
    "group_names",
]
