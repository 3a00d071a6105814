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

One job a module:

    schema.py          the dataclasses and the schema of a regime, ROOT / CONF_DIR / SWEEPS_DIR
    files.py           conf/ YAML files: group names, reading, resolving an experiment or sweep
    overrides.py       CLI `key=value` parsing, merges whose errors name the key
    loading.py         `load`, `per_target`: the composition above
    validation.py      `validate`: every range check, names against the registries
    trainer_checks.py  the `trainer.*` range checks (without importing Lightning)
    output.py          `to_yaml`, `flatten`

Callers use the names re-exported here (`config.load`, `config.validate`, ...).
"""

from __future__ import annotations

from lit_mia.config.files import _read_yaml, group_names, resolve_file
from lit_mia.config.loading import load, per_target
from lit_mia.config.output import flatten, to_yaml
from lit_mia.config.overrides import _dotlist, _merge, parse_overrides
from lit_mia.config.schema import (
    CONF_DIR,
    GROUPS,
    ROOT,
    SWEEPS_DIR,
    DataConfig,
    ExperimentBase,
    ExperimentConfig,
    NetConfig,
    SweepConfig,
    TrackingConfig,
    TrainerConfig,
    schema,
    schema_keys,
)
from lit_mia.config.trainer_checks import PRECISIONS, STRATEGIES, check_trainer_keys
from lit_mia.config.validation import validate
from lit_mia.targets import target_names

__all__ = [
    "CONF_DIR",
    "GROUPS",
    "PRECISIONS",
    "ROOT",
    "STRATEGIES",
    "SWEEPS_DIR",
    "DataConfig",
    "ExperimentBase",
    "ExperimentConfig",
    "NetConfig",
    "SweepConfig",
    "TrackingConfig",
    "TrainerConfig",
    "_dotlist",
    "_merge",
    "_read_yaml",
    "check_trainer_keys",
    "flatten",
    "group_names",
    "load",
    "parse_overrides",
    "per_target",
    "resolve_file",
    "schema",
    "schema_keys",
    "target_names",
    "to_yaml",
    "validate",
]
