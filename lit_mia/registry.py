"""Registries by name, importable without torch: built-ins as lazy `module:attr` references,
plug-ins as entry points, each loaded on first use.

The command line validates a config (unknown keys, unknown names, value ranges) before it
imports torch, Lightning or MLflow, so a typo comes back in well under a second. That needs
every name lit_mia selects by config to be known without importing the code behind it, which
is what an entry point already is for a plug-in; a built-in entry is the same thing, written
here or in its package's registry as `"module:attr"` (the pattern of pip's lazily imported
commands). `Registry` is a mapping: `name in R`, `sorted(R)` and `R.source(name)` read names
only; `R[name]` imports the module that defines the entry, checks a plug-in's object once, and
keeps it; `R[name] = obj` registers an entry for this process (tests, notebooks).

Registries here: `NETS` (net builders, lit_mia/nets.py), `DATASETS` (loaders,
lit_mia/data/datasets.py), `AUGMENTATIONS` (training augmentation modes,
lit_mia/data/datamodule.py). Target regimes are registered in lit_mia/targets/__init__.py and
attacks in lit_mia/attacks/registry.py, the same way.

Plug-in errors are one-line `ConfigError`s: a plug-in whose module fails to import names the
entry point, its distribution and the error (when it is used); a name that clashes with a
built-in or with another plug-in names both sources (as soon as the names are read).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from importlib.metadata import EntryPoint
from typing import Any

from lit_mia import plugins
from lit_mia.errors import ConfigError


class Ref:
    """A lazy reference to `module:attr` (dots in attr walk attributes); `load()` imports."""

    __slots__ = ("_obj", "value")

    def __init__(self, value: str) -> None:
        mod, sep, attr = value.partition(":")
        if not sep or not mod or not attr:
            raise ValueError(f"a reference is 'module:attr', got {value!r}")
        self.value = value
        self._obj: Any = _UNSET

    @property
    def module(self) -> str:
        return self.value.partition(":")[0]

    def load(self) -> Any:
        if self._obj is _UNSET:
            mod, _, attr = self.value.partition(":")
            obj: Any = importlib.import_module(mod)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._obj = obj
        return self._obj

    def __repr__(self) -> str:
        return f"Ref({self.value!r})"


class LazyCallable(Ref):
    """A `Ref` to a function that can stand in for it: calling it imports and calls the target.
    `__module__` names the defining module without importing it (plug-in error messages)."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.__module__ = self.module  # instance attribute: wins over the class's

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)


def lazy(fn: Callable | str | None) -> Callable | None:
    """A callable for `fn`: itself, or a `LazyCallable` for a `module:attr` string."""
    return LazyCallable(fn) if isinstance(fn, str) else fn


_UNSET = object()


class Registry(MutableMapping):
    """Built-ins (objects or `module:attr` strings) plus the plug-ins of one entry-point group.

    `registry` is one of plugins.GROUPS (nets, datasets, targets, attacks); `check(name, obj)`
    returns a complaint about a plug-in's object or None. `eps`: entry points to use instead of
    the installed ones (tests). Names are read on first use, objects on first access.
    """

    def __init__(
        self,
        registry: str,
        builtins: Mapping[str, Any],
        check: Callable[[str, Any], str | None] | None = None,
        eps: Iterable[EntryPoint] | None = None,
    ) -> None:
        self.registry, self.group = registry, plugins.GROUPS[registry]
        self.what = registry[:-1]
        self._builtins = {n: Ref(v) if isinstance(v, str) else v for n, v in builtins.items()}
        self._check = check
        self._eps = None if eps is None else tuple(eps)
        self._plugins: dict[str, EntryPoint] | None = None
        self._loaded: dict[str, Any] = {}

    def replace(
        self, builtins: Mapping[str, Any] | None = None, eps: Iterable[EntryPoint] | None = None
    ) -> Registry:
        """The same registry (group, check) over other built-ins and/or entry points (tests)."""
        raw = {n: Ref(v.value) if isinstance(v, Ref) else v for n, v in self._builtins.items()}
        return Registry(self.registry, raw if builtins is None else builtins, self._check, eps)

    # -------------------------------------------------------------- names (no imports)
    def _discover(self) -> dict[str, EntryPoint]:
        if self._plugins is None:
            found: dict[str, EntryPoint] = {}
            eps = plugins.discover(self.group) if self._eps is None else self._eps
            for ep in eps:
                if ep.name in self._builtins:
                    raise ConfigError(
                        f"plug-in {self.what} {ep.name!r} from {plugins.source(ep)} clashes "
                        f"with {self.source(ep.name)}; rename the entry point in group "
                        f"{self.group}"
                    )
                if ep.name in found:
                    raise ConfigError(
                        f"plug-in {self.what} {ep.name!r} from {plugins.source(ep)} clashes "
                        f"with the plug-in {plugins.source(found[ep.name])}; rename the entry "
                        f"point in group {self.group}"
                    )
                found[ep.name] = ep
            self._plugins = found
        return self._plugins

    def __iter__(self) -> Iterator[str]:
        yield from self._builtins
        yield from self._discover()

    def __len__(self) -> int:
        return len(self._builtins) + len(self._discover())

    def __contains__(self, name: object) -> bool:
        return name in self._builtins or name in self._discover()

    def is_plugin(self, name: str) -> bool:
        return name not in self._builtins and name in self._discover()

    def source(self, name: str) -> str:
        """`the built-in net 'mlp' (lit_mia.nets)` or `the plug-in tiny = pkg.mod:f (dist 0.1)`."""
        if name in self._builtins:
            obj = self._builtins[name]
            if isinstance(obj, Ref):
                mod = obj.module
            else:  # an Attack names the module of its code
                mod = getattr(obj, "module", None) or getattr(obj, "__module__", None)
                mod = mod or type(obj).__module__
            return f"the built-in {self.what} {name!r} ({mod})"
        return f"the plug-in {plugins.source(self._discover()[name])}"

    def plugin_sources(self) -> dict[str, str]:
        """Plug-in name -> `name = module:attr (distribution version)`, nothing imported."""
        return {n: plugins.source(ep) for n, ep in self._discover().items()}

    # -------------------------------------------------------------- objects (imports)
    def __getitem__(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        if name in self._builtins:
            obj = self._builtins[name]
            obj = obj.load() if isinstance(obj, Ref) else obj
        elif name in self._discover():
            ep = self._discover()[name]
            obj = plugins.load(ep)
            problem = self._check(name, obj) if self._check is not None else None
            if problem:
                raise ConfigError(
                    f"plug-in {self.what} {plugins.source(ep)} in group {self.group}: {problem}"
                )
        else:
            raise KeyError(name)
        self._loaded[name] = obj
        return obj

    def __setitem__(self, name: str, obj: Any) -> None:
        """Register `obj` under `name` at run time (an object or a `module:attr` string), as a
        built-in of this process: `ATTACKS["mine"] = Attack("mine", run)`."""
        self._builtins[name] = Ref(obj) if isinstance(obj, str) else obj
        self._loaded.pop(name, None)

    def __delitem__(self, name: str) -> None:
        if name not in self._builtins:
            raise KeyError(name)
        del self._builtins[name]
        self._loaded.pop(name, None)

    def load_all(self) -> dict[str, Any]:
        """Every entry, imported (and every plug-in checked): a plain dict."""
        return {n: self[n] for n in self}


def merged(
    registry: str,
    builtins: Mapping[str, Any],
    check: Callable[[str, Any], str | None] | None = None,
    eps: Iterable[EntryPoint] | None = None,
) -> dict[str, Any]:
    """`builtins` plus the plug-ins of `registry`'s group (or `eps`), all loaded and checked
    now: the eager form of `Registry`, for tests and callers that need every object."""
    return Registry(registry, builtins, check, eps).load_all()


def _is_callable(kind: str) -> Callable[[str, Any], str | None]:
    return lambda name, f: None if callable(f) else f"a {kind} must be callable"


NETS = Registry(
    "nets",
    {
        n: f"lit_mia.nets:{n}"
        for n in ("lenet_mnist", "lenet_cifar", "fmnist_cnn", "yale_cnn", "wide_resnet", "mlp")
    },
    _is_callable("net builder"),
)
"""Net builders by name (`net.name`): lit_mia/nets.py `build_net` calls them."""

DATASETS = Registry(
    "datasets",
    {
        "mnist5k": "lit_mia.data.datasets:mnist5k",
        "digits": "lit_mia.data.datasets:digits",
        "mnist": "lit_mia.data.datasets:mnist",
        "fashion_mnist": "lit_mia.data.datasets:fashion_mnist",
        "cifar10": "lit_mia.data.datasets:cifar10",
        "cifar100": "lit_mia.data.datasets:cifar100",
        "svhn": "lit_mia.data.datasets:svhn",
        "image_folder": "lit_mia.data.datasets:image_folder",
        "tensors": "lit_mia.data.datasets:tensors",
    },
    _is_callable("dataset loader"),
)
"""Dataset loaders `(root, download) -> DatasetBundle` by name (`data.name`)."""

AUGMENTATIONS = ("none", "shift", "flip_shift")
"""Training-batch augmentation modes (`data.augment`, lit_mia/data/datamodule.py)."""


__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "NETS",
    "LazyCallable",
    "Ref",
    "Registry",
    "lazy",
    "merged",
]
