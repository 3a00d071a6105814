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
entry point's name. Each registry calls `merged(group, builtins, check)` once, when its module is
imported, so plug-ins get the same validation, config schema, tracking and caching as
built-ins and appear in `lit-mia list`.

Errors (`ConfigError`, one line; the CLI exits 2 before any MLflow run exists):
- a plug-in whose module fails to import names the entry point, its distribution and the error;
- a name that clashes with a built-in or with another plug-in names both sources.

This module imports nothing of lit_mia but errors.py, so every registry can use it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
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

LOADED: dict[str, dict[str, str]] = {g: {} for g in GROUPS}
"""Registry -> plug-in name -> its source (for `lit-mia list` and error messages)."""


CHECKS: dict[str, Callable[[str, Any], str | None]] = {}
"""Registry -> its check of a plug-in object (set by the registry's own `merged` call)."""


def source(ep: EntryPoint) -> str:
    """`name = module:attr (distribution version)` of an entry point."""
    dist = getattr(ep, "dist", None)
    where = f" ({dist.name} {dist.version})" if dist is not None else ""
    return f"{ep.name} = {ep.value}{where}"


def builtin_source(what: str, name: str, obj: Any) -> str:
    """`the built-in net 'mlp' (lit_mia.nets)`: where a built-in entry is defined."""
    mod = getattr(getattr(obj, "run", None), "__module__", None)  # an Attack: its run's module
    mod = mod or getattr(obj, "__module__", None) or type(obj).__module__
    return f"the built-in {what} {name!r} ({mod})"


@functools.cache
def _discover(group: str) -> tuple[EntryPoint, ...]:
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


def merged(
    registry: str,
    builtins: dict[str, Any],
    check: Callable[[str, Any], str | None] | None = None,
    eps: Iterable[EntryPoint] | None = None,
) -> dict[str, Any]:
    """`builtins` plus the plug-ins of `registry`'s entry-point group (or `eps`, for tests).

    `check(name, obj)` returns a complaint (why obj is not a valid entry) or None; without one,
    the check the registry registered on its own call is used. Raises ConfigError for a failed
    import, a clash (naming both sources) or a complaint.
    """
    group = GROUPS[registry]
    if check is None:
        check = CHECKS.get(registry)
    else:
        CHECKS[registry] = check
    out = dict(builtins)
    what = registry[:-1]
    origin = {name: builtin_source(what, name, obj) for name, obj in builtins.items()}
    for ep in _discover(group) if eps is None else eps:
        if ep.name in origin:
            raise ConfigError(
                f"plug-in {what} {ep.name!r} from {source(ep)} clashes with {origin[ep.name]}; "
                f"rename the entry point in group {group}"
            )
        obj = load(ep)
        problem = check(ep.name, obj) if check is not None else None
        if problem:
            raise ConfigError(f"plug-in {what} {source(ep)} in group {group}: {problem}")
        out[ep.name] = obj
        origin[ep.name] = f"the plug-in {source(ep)}"
        if eps is None:
            LOADED[registry][ep.name] = source(ep)
    return out


def describe() -> list[str]:
    """One line per loaded plug-in: `<registry> <name>: <source>`."""
    return [f"{reg[:-1]} {name}: {src}" for reg, d in LOADED.items() for name, src in d.items()]


__all__ = ["GROUPS", "LOADED", "describe", "load", "merged", "source"]
