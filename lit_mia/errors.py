"""The one error type users see for bad input.

Every check of user input (config keys, names, sizes, ranges, missing data) raises
`ConfigError` with a one-line message that names the offending key and what is allowed. The CLI
turns it into `error: <message>` on stderr and exit code 2, before any MLflow run is started or
after the run has been ended FAILED.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """Bad user input: unknown name, wrong type, value out of range, missing data."""


def unknown_name(kind: str, name: object, valid: Iterable[str]) -> ConfigError:
    """Error for a name missing from a registry, listing the valid names."""
    return ConfigError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")


def check_key(cfg: Any, key: str, ok: bool, allowed: str) -> None:
    """`require` with the value read from config `cfg` at dotted `key` (OmegaConf.select)."""
    if not ok:
        from omegaconf import OmegaConf

        require(ok, key, allowed, OmegaConf.select(cfg, key))


def require(ok: bool, key: str, allowed: str, value: object) -> None:
    """ConfigError `<key> must be <allowed>, got <value>` unless `ok`."""
    if not ok:
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")
