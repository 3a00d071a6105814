"""Configuration: structured dataclasses, YAML groups under conf/, CLI `key=value` overrides.

Composition (later wins)::

    schema defaults (the dataclasses below)
      -> conf/<group>/<name>.yaml   for each group: data net target attack trainer
      -> the experiment file's section for that group
      -> CLI overrides (`target.eps=0.2`, or the group shorthand `target=pgd`)

The schema is assembled from the registries, so every knob has exactly one default, in its
settings dataclass: the `target` section is the chosen regime's settings class
(`targets.settings_class(name)`, targets/settings.py), the `attack` section is `AttackSettings`
plus one sub-section per settings class an attack entry declares (`Attack.settings`,
attacks/registry.py; `updates` likewise). Nothing here imports torch, Lightning or MLflow (the
registries hold lazy references, lit_mia/registry.py), so `lit-mia config`, `list` and every
unknown key or name come back before the heavy libraries would have loaded; an attack's own
`check` imports its module when it runs. A group's name is its `name` key (CLI `g.name` /
`g=NAME`, else the experiment's, else the default); conf/<group>/<name>.yaml, when it exists,
holds only what differs from the defaults. Top-level keys (`seed`, `attacks`, `targets`,
`tracking.*`) are schema -> experiment -> CLI. Every user error (unknown key or name, wrong
type, value out of range) is a one-line `ConfigError` naming the key; range checks live next to
each settings class (`validate`) and are called from `validate` below.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lit_mia.attacks.base import UPDATE_LEAKAGE
from lit_mia.attacks.registry import ATTACKS, settings_sections
from lit_mia.attacks.settings import AttackSettings
from lit_mia.errors import ConfigError, did_you_mean, require, unknown_name
from lit_mia.registry import AUGMENTATIONS, DATASETS, NETS
from lit_mia.targets import TARGETS, parse_target_entry, settings_class, target_names
from lit_mia.trainer_checks import STRATEGIES, check_trainer_keys  # noqa: F401 (STRATEGIES: tests)

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
class ExperimentBase:
    """The keys of one `lit-mia run` that are not a registry's (see `schema`)."""

    name: str = "single"
    description: str = ""
    label: str = ""  # this target's entry in `targets` (run name); set by per_target
    seed: int = 0
    targets: list[str] = field(default_factory=list)
    attacks: list[str] = field(default_factory=lambda: ["ib", "ia"])
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    net: NetConfig = field(default_factory=NetConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    compare_by: str = ""  # parent run: plot each attack's AUC against this key


def _section(cls: type) -> Any:
    return field(default_factory=cls)


@cache
def schema(target: str = "natural") -> type:
    """The experiment dataclass for regime `target`: ExperimentBase plus `target` (the regime's
    settings class), `attack` (AttackSettings plus every registered `attack.<x>` section) and
    the registered top-level sections (`updates`)."""
    sections = settings_sections()
    sub = [
        (k[len("attack.") :], c, _section(c))
        for k, c in sections.items()
        if k.startswith("attack.")
    ]
    attack = make_dataclass("AttackConfig", sub, bases=(AttackSettings,))
    top = [(k, c, _section(c)) for k, c in sections.items() if "." not in k]
    regime = settings_class(target)
    fields = [("target", regime, _section(regime)), ("attack", attack, _section(attack)), *top]
    return make_dataclass(f"ExperimentConfig_{target}", fields, bases=(ExperimentBase,))


ExperimentConfig = schema()
"""The schema with the default regime (natural)."""


@cache
def _schema_config(target: str) -> DictConfig:
    """`schema(target)` as an OmegaConf config, built once per regime (40% of a `load`):
    `load` merges into a copy of it (OmegaConf.merge deep-copies its first input)."""
    return OmegaConf.structured(schema(target))


# ---------------------------------------------------------------- helpers
def _names_in(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def group_names(group: str) -> list[str]:
    """Names available for a config group: the registry's for target and attack, the
    registry's and conf/<group>/'s for net and data, else the YAML files under conf/<group>/."""
    if group == "target":
        return sorted(TARGETS)
    if group == "attack":
        return sorted(ATTACKS)
    if group in ("net", "data"):  # registry names (plug-ins too) and conf/<group>/*.yaml
        return sorted({*(NETS if group == "net" else DATASETS), *_names_in(CONF_DIR / group)})
    return _names_in(CONF_DIR / group)


def _read_yaml(path: Path) -> DictConfig:
    import yaml

    try:
        cfg = OmegaConf.load(path)
    except yaml.YAMLError as e:  # one line with file and line, not PyYAML's traceback
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: YAML syntax error: {what}") from None
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
        cli = OmegaConf.from_dotlist([f"{k}={v}" for k, v in pairs])
    except OmegaConfBaseException as e:
        raise ConfigError(f"cannot parse overrides: {e}") from None
    if isinstance(cli.get("attacks"), str):  # attacks=ib or attacks=ib,ia: a list of names
        cli.attacks = [a.strip() for a in cli.attacks.split(",") if a.strip()]
    return cli


def _merge(base: DictConfig, other: Any, where: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, other)
    except OmegaConfBaseException as e:
        raise ConfigError(_explain(e, where)) from None
    except TypeError:  # e.g. a mapping where the schema has a list: name the key
        key, want = _mismatched_key(base, other)
        raise ConfigError(f"{key} must be {want} (in {where})") from None


def _kind(v: Any) -> str:
    if isinstance(v, dict | DictConfig):
        return "a mapping"
    return "a list" if isinstance(v, list | tuple | ListConfig) else "a single value"


def _mismatched_key(base: Any, other: Any, prefix: str = "") -> tuple[str, str]:
    """(dotted key, expected kind) of the first value of `other` whose container kind
    (mapping / list / single value) differs from the schema's in `base`."""
    for k, v in other.items() if isinstance(other, dict | DictConfig) else []:
        key = f"{prefix}{k}"
        have = base.get(k) if isinstance(base, DictConfig) else None
        if isinstance(have, DictConfig) and isinstance(v, dict | DictConfig):
            found = _mismatched_key(have, v, key + ".")
            if found[0]:
                return found
        elif have is not None and _kind(have) != _kind(v):
            return key, _kind(have)
    return ("", "") if prefix else ("a value", "of the schema's type")


def _explain(e: OmegaConfBaseException, where: str) -> str:
    key = getattr(e, "full_key", None) or ""
    msg = str(e).splitlines()[0]
    if "Key '" in msg and "not in" in msg:
        return f"unknown key {key!r} in {where}{did_you_mean(key, _known_keys(key.count('.')))}"
    if key:
        return f"{key}: {msg} (in {where})"
    return f"{msg} (in {where})"


@cache
def _known_keys(depth: int) -> tuple[str, ...]:
    """Every schema key and section with `depth` dots, over all regimes (for suggestions)."""
    keys: set[str] = set()
    for t in group_names("target"):
        try:
            flat = schema_keys(t)
        except ConfigError:  # a regime whose plug-in does not import: no suggestions from it
            continue
        keys.update(".".join(k.split(".")[: depth + 1]) for k in flat if k.count(".") >= depth)
    return tuple(sorted(keys))


# ---------------------------------------------------------------- loading
class _Replay(Exception):
    """A merge failed on `load`'s fast path; `load` redoes the whole load on copies."""


def _merge_owned(cfg: DictConfig, other: Any, where: str) -> DictConfig:
    """`_merge` into a config `load` owns, without copying it or `other` (OmegaConf's public
    `unsafe_merge`: the same merge minus the deep copies, which were most of a `load`).
    `other` must be a throwaway; on any error `load` replays the plain way, so the message
    names the source and key exactly as `_merge` does."""
    try:
        return OmegaConf.unsafe_merge(cfg, other)
    except (OmegaConfBaseException, TypeError):
        raise _Replay from None


def load(experiment: str, overrides: list[str] | None = None) -> DictConfig:
    """Resolve an experiment (name under conf/experiment/ or YAML path) with CLI overrides."""
    try:
        return _load(experiment, overrides, _merge_owned)
    except _Replay:
        return _load(experiment, overrides, _merge)


def _load(experiment: str, overrides: list[str] | None, merge) -> DictConfig:
    path = resolve_file(experiment, CONF_DIR / "experiment", "experiment")
    exp = _read_yaml(path)
    pairs = parse_overrides(overrides or [])
    cli = _dotlist(pairs)
    names = {g: _group_name(g, cli, exp) for g in GROUPS}
    if names["target"] not in TARGETS:
        raise unknown_name("target name (key target.name)", names["target"], TARGETS)
    cfg = _merge(_schema_config(names["target"]), {"name": path.stem}, str(path))  # a copy
    for group, name in names.items():
        gpath = CONF_DIR / group / f"{name}.yaml"
        if gpath.is_file():
            cfg = merge(cfg, {group: _read_yaml(gpath)}, str(gpath))
        elif name not in group_names(group):
            raise unknown_name(f"{group} name (key {group}.name)", name, group_names(group))
        cfg[group].name = str(name)

    cfg = merge(cfg, exp, str(path))
    if OmegaConf.select(cli, "attack.name") is not None and "attacks" not in cli:
        cli.attacks = [str(cli.attack.name)]
    cfg = merge(cfg, cli, "command-line overrides")
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(_explain(e, "interpolation")) from None
    validate(cfg)
    return cfg


def _group_name(group: str, cli: DictConfig, exp: DictConfig) -> str:
    """A group's name: CLI, else the experiment file, else the schema default."""
    for source in (cli, exp):
        name = OmegaConf.select(source, f"{group}.name")
        if name is not None:
            return str(name)
    return str(getattr(schema()(), group).name)


def _targets(experiment: str, overrides: list[str] | None) -> list[str]:
    """The experiment's `targets` list (CLI over experiment file), read before any regime's
    schema is applied; a CLI override of a key some entry's regime lacks is an error."""
    cli = _dotlist([p for p in parse_overrides(overrides or []) if p[0] == "targets"])
    exp = _read_yaml(resolve_file(experiment, CONF_DIR / "experiment", "experiment"))
    value = cli.get("targets", exp.get("targets", []))
    if not isinstance(value, ListConfig | list):
        raise ConfigError(f"targets must be a list of target entries, got {value!r}")
    return [str(e) for e in value]


def per_target(experiment: str, overrides: list[str] | None = None) -> list[DictConfig]:
    """One resolved config per target of the experiment (`targets`, else `target.name`).

    A `targets` entry is `NAME` or `NAME key=value ...`, e.g. `"pgd ratio=0.5"`: bare keys are
    inside `target`, dotted keys are full keys (`"natural data.n_members=500"`). Each entry is
    `load(experiment, overrides + [target.name=NAME, target.key=value ..., label=ENTRY])`, so
    the regime's settings class supplies its defaults, experiment/CLI keys apply on top and
    the entry's own keys last.
    """
    entries = _targets(experiment, overrides)
    if not entries:
        return [load(experiment, overrides)]
    out = []
    for entry in entries:
        name, extra = parse_target_entry(entry)
        keys = [kv if "." in kv.partition("=")[0] else f"target.{kv}" for kv in extra]
        pairs = [f"target.name={name}", *keys, f"label={entry}"]
        out.append(load(experiment, [*(overrides or []), *pairs]))
    return out


# ---------------------------------------------------------------- validation
def _check(cfg: DictConfig, key: str, ok: bool, allowed: str) -> None:
    """errors.require with the value read from cfg at `key`."""
    if not ok:
        require(ok, key, allowed, OmegaConf.select(cfg, key))


def validate(cfg: DictConfig) -> None:
    """Every range check, each owned by its settings class, called from this one place; names
    are checked against the registries."""
    c = cfg
    _check(c, "seed", c.seed >= 0, ">= 0")
    for k in ("n_members", "n_nonmembers"):
        _check(c, f"data.{k}", c.data[k] >= 1, ">= 1")
    for k in ("n_validation", "n_shadow", "n_probe", "num_workers"):
        _check(c, f"data.{k}", c.data[k] >= 0, ">= 0")
    _check(c, "data.batch_size", c.data.batch_size >= 1, ">= 1")
    _check(c, "data.augment", c.data.augment in AUGMENTATIONS, f"one of {', '.join(AUGMENTATIONS)}")
    _check(c, "net.width", c.net.width > 0, "> 0")
    _check(c, "net.depth", c.net.depth is None or c.net.depth >= 1, ">= 1 or null")
    _check(c, "net.dropout", 0 <= c.net.dropout < 1, "in [0, 1)")
    for reg, key in ((NETS, "net.name"), (DATASETS, "data.name")):
        if reg.is_plugin(c[key.split(".")[0]].name):  # a chosen plug-in must import (one line)
            reg[c[key.split(".")[0]].name]
    settings_class(c.target.name).validate(c.target, c)
    AttackSettings.validate(c.attack, c)
    check_trainer_keys(c)
    for name in target_names(c):
        if name not in TARGETS:
            raise unknown_name("target (in targets)" if c.targets else "target", name, TARGETS)
    if c.compare_by:
        numeric = OmegaConf.select(c, str(c.compare_by), default=None)
        ok = str(c.compare_by) in flatten(c) and isinstance(numeric, (int, float))
        _check(c, "compare_by", ok, "empty or a numeric config key such as data.n_members")
    _check_attacks(c)


def _check_attacks(c: DictConfig) -> None:
    """Names in `attacks`, one kind family per experiment, each attack's own `check`."""
    if not c.attacks:
        raise ConfigError(
            f"attacks must name at least one attack; valid: {', '.join(sorted(ATTACKS))}"
        )
    for name in c.attacks:
        if name not in ATTACKS:
            raise unknown_name("attack (in attacks)", name, ATTACKS)
    updates = sorted(n for n, a in ATTACKS.items() if a.kind == UPDATE_LEAKAGE)
    if len({ATTACKS[n].kind == UPDATE_LEAKAGE for n in c.attacks}) > 1:
        raise ConfigError(
            f"attacks mixes update-leakage attacks ({', '.join(updates)}) with "
            f"membership attacks: {list(c.attacks)}; run them as separate experiments"
        )
    for name in c.attacks:
        check = ATTACKS[name].check
        if check is not None:
            check(c)


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


def schema_keys(target: str = "natural") -> list[str]:
    """All dotted keys of the experiment schema for regime `target` (for docs and tests)."""
    return sorted(flatten(OmegaConf.structured(schema(target))))


__all__ = [
    "ExperimentConfig",
    "SweepConfig",
    "schema",
    "load",
    "per_target",
    "target_names",
    "validate",
    "flatten",
    "parse_overrides",
    "resolve_file",
    "group_names",
]
