"""CLI `key=value` overrides and merges: parsing, dotlists, a merge whose errors name the key and
the mismatched types.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lit_mia.config.files import group_names
from lit_mia.config.schema import GROUPS, schema_keys
from lit_mia.errors import ConfigError, did_you_mean


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
