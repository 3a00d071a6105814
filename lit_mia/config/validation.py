"""Every range check of a resolved config, each owned by its settings class, called from
`validate`; names are checked against the registries.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from lit_mia.attacks.base import UPDATE_LEAKAGE
from lit_mia.attacks.registry import ATTACKS
from lit_mia.attacks.settings import AttackSettings
from lit_mia.config.output import flatten
from lit_mia.config.trainer_checks import check_trainer_keys
from lit_mia.errors import ConfigError, check_key, unknown_name
from lit_mia.models.farm_settings import FarmSettings
from lit_mia.registry import AUGMENTATIONS, DATASETS, NETS
from lit_mia.targets import TARGETS, settings_class, target_names


def validate(cfg: DictConfig) -> None:
    """Every range check, each owned by its settings class, called from this one place; names
    are checked against the registries."""
    c = cfg
    check_key(c, "seed", c.seed >= 0, ">= 0")
    for k in ("n_members", "n_nonmembers"):
        check_key(c, f"data.{k}", c.data[k] >= 1, ">= 1")
    for k in ("n_validation", "n_shadow", "n_probe", "num_workers"):
        check_key(c, f"data.{k}", c.data[k] >= 0, ">= 0")
    check_key(c, "data.batch_size", c.data.batch_size >= 1, ">= 1")
    check_key(
        c, "data.augment", c.data.augment in AUGMENTATIONS, f"one of {', '.join(AUGMENTATIONS)}"
    )
    check_key(c, "net.width", c.net.width > 0, "> 0")
    check_key(c, "net.depth", c.net.depth is None or c.net.depth >= 1, ">= 1 or null")
    check_key(c, "net.dropout", 0 <= c.net.dropout < 1, "in [0, 1)")
    for reg, key in ((NETS, "net.name"), (DATASETS, "data.name")):
        if reg.is_plugin(c[key.split(".")[0]].name):  # a chosen plug-in must import (one line)
            reg[c[key.split(".")[0]].name]
    settings_class(c.target.name).validate(c.target, c)
    AttackSettings.validate(c.attack, c)
    check_trainer_keys(c)
    FarmSettings.validate(c.farm, c)
    for name in target_names(c):
        if name not in TARGETS:
            raise unknown_name("target (in targets)" if c.targets else "target", name, TARGETS)
    if c.compare_by:
        numeric = OmegaConf.select(c, str(c.compare_by), default=None)
        ok = str(c.compare_by) in flatten(c) and isinstance(numeric, (int, float))
        check_key(c, "compare_by", ok, "empty or a numeric config key such as data.n_members")
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
