"""The one error type users see for bad input.

Every check of user input (config keys, names, sizes, ranges, missing data) raises
`ConfigError` with a one-line message that names the offending key and what is allowed. The CLI
turns it into `error: <message>` on stderr and exit code 2, before any MLflow run is started or
after the run has been ended FAILED.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """Bad user input: unknown name, wrong type, value out of range, missing data."""


def did_you_mean(name: object, candidates: Iterable[str]) -> str:
    """` (did you mean 'x'?)` naming the closest candidate (difflib ratio >= 0.6; a second one
    when it is as close), or ""."""
    close = difflib.get_close_matches(str(name), list(candidates), n=3, cutoff=0.6)
    ratio = [difflib.SequenceMatcher(None, str(name), c).ratio() for c in close]
    close = [c for c, r in zip(close, ratio, strict=True) if r >= ratio[0] - 0.05][:2]
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def unknown_name(kind: str, name: object, valid: Iterable[str]) -> ConfigError:
    """Error for a name missing from a registry, listing the valid names (the closest first
    as a suggestion)."""
    valid = sorted(valid)
    hint = did_you_mean(name, valid)
    return ConfigError(f"unknown {kind} {name!r}{hint}; valid: {', '.join(valid)}")


def check_key(cfg: Any, key: str, ok: bool, allowed: str) -> None:
    """`require` with the value read from config `cfg` at dotted `key` (OmegaConf.select)."""
    if not ok:
        from omegaconf import OmegaConf

        require(ok, key, allowed, OmegaConf.select(cfg, key))


def require(ok: bool, key: str, allowed: str, value: object) -> None:
    """ConfigError `<key> must be <allowed>, got <value>` unless `ok`."""
    if not ok:
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")
