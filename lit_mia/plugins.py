"""Plug-ins: nets, datasets, target regimes and attacks registered by other installed packages.

A package adds entries to lit_mia's registries through entry points (pyproject.toml)::

    [project.entry-points."lit_mia.nets"]       my_mlp = "my_pkg.nets:my_mlp"
    [project.entry-points."lit_mia.datasets"]   my_data = "my_pkg.data:load"
    [project.entry-points."lit_mia.targets"]    my_regime = "my_pkg.regime:MyTarget"
    [project.entry-points."lit_mia.attacks"]    my_attack = "my_pkg.attack:MY_ATTACK"

The entry point's name is the registry name (`net.name=my_mlp`); its object is what the
built-in registry holds: a net builder with `nets.build_net`'s builder signature (set
`accepts_depth = True` on it to take `net.depth`), a dataset loader `(root, download) ->
DatasetBundle`, a `TargetModule` subclass with its `Settings`, an `Attack` whose `name` is the
entry point's name. Every registry is a `lit_mia.registry.Registry` over its built-ins and its
group's entry points, so plug-ins get the same validation, config schema, tracking and caching
as built-ins and appear in `lit-mia list`. Names are read from the package metadata; a
plug-in's module is imported when its entry is first used (so a plug-in that imports torch does
not slow down `lit-mia list` or a config error).

Errors (`ConfigError`, one line; the CLI exits 2 before any MLflow run exists):
- a plug-in whose module fails to import names the entry point, its distribution and the error;
- a name that clashes with a built-in or with another plug-in names both sources.

This module imports nothing of lit_mia but errors.py, so every registry can use it.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from lit_mia.errors import ConfigError

GROUPS = {
    "nets": "lit_mia.nets",
    "datasets": "lit_mia.datasets",
    "targets": "lit_mia.targets",
    "attacks": "lit_mia.attacks",
}
"""Registry -> entry-point group."""


def source(ep: EntryPoint) -> str:
    """`name = module:attr (distribution version)` of an entry point."""
    dist = getattr(ep, "dist", None)
    where = f" ({dist.name} {dist.version})" if dist is not None else ""
    return f"{ep.name} = {ep.value}{where}"


@functools.cache
def discover(group: str) -> tuple[EntryPoint, ...]:
    """The installed entry points of `group` (reads package metadata, imports nothing)."""
    return tuple(entry_points(group=group))


def load(ep: EntryPoint) -> Any:
    """The object of one entry point; ConfigError naming it and the error if it fails."""
    try:
        return ep.load()
    except Exception as e:  # any failure inside the plug-in's module
        first = (str(e).strip().splitlines() or [""])[0]
        raise ConfigError(
            f"plug-in {source(ep)} in group {ep.group} failed to import: "
            f"{type(e).__name__}: {first}"
        ) from None


def describe() -> list[str]:
    """One line per installed plug-in, `<registry> <name>: <source>`, without importing any."""
    return [
        f"{reg[:-1]} {ep.name}: {source(ep)}" for reg, g in GROUPS.items() for ep in discover(g)
    ]


__all__ = ["GROUPS", "describe", "discover", "load", "source"]
