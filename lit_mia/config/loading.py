"""Loading an experiment: schema defaults -> conf/<group>/<name>.yaml -> the experiment's section
-> CLI overrides (`load`), one config per target (`per_target`).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lit_mia.config.files import _read_yaml, group_names, resolve_file
from lit_mia.config.overrides import _dotlist, _explain, _merge, parse_overrides
from lit_mia.config.schema import CONF_DIR, GROUPS, _schema_config, schema
from lit_mia.config.validation import validate
from lit_mia.errors import ConfigError, unknown_name
from lit_mia.targets import TARGETS, parse_target_entry


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
