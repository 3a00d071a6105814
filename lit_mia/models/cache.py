"""On-disk cache of trained models (shadow models of LiRA, the Updates-Leak farm, ...).

An entry is a dict of tensors (a state_dict, or several stacked ones) stored under
``root/kind/<key>/`` as ``tensors.pt`` with ``fields.json`` beside it. The key is the sha256 of
the *canonical JSON* of every field that determines the model plus `FORMAT_VERSION`:

- mappings with sorted keys, tuples as lists, floats as ``repr`` (json's own float form: the
  shortest string that round-trips, so 0.1 and 0.1000000000001 differ), numpy / torch scalars
  as python numbers, numpy arrays and tensors as ``{"sha256", "shape", "dtype"}`` of their bytes
  (so a split's index array can be passed as is), OmegaConf containers resolved first;
- ints and floats are kept apart (``1`` and ``1.0`` give different keys): a cache miss is
  cheap, a stale hit is the bug to avoid.

Every key also holds `code_version()`: the lit_mia package version and a sha256 of the source
of every module that trains a cached model (`TRAINING_SOURCES`: training loop, nets, regimes,
data, perturbations, bounds, farms). Editing any of them retrains instead of serving a model
from older code; editing unrelated code (plots, reports, attacks' scoring) keeps the cache.
When `load` misses while the kind holds other entries, it logs (logger
``lit_mia.models.cache``) which
fields differ from the nearest stored entry (`explain_miss`), so a user can tell why a model
was retrained.

A changed field must never reuse a stale entry (LeakPro issues #234 / #415 reused shadow models
trained on another split / config). Therefore callers pass *everything* that determines the
model (dataset, split indices or their hash, the full regime / net / trainer config, seed, model
index, epochs, their own code-format version) and `load` re-reads ``fields.json`` and treats
anything but an exact match with the requested fields as a miss (a hash collision or a
hand-edited entry cannot be served). Writes are atomic (`ModelCache.publish`: the entry is
written into a hidden folder and renamed into place), so a crashed or concurrent writer never
leaves a half-written entry that `load` would accept, and of two racing writers of one entry
(two nodes of a Ray farm) exactly one wins. The root may be any folder, a shared one that
every node of a cluster mounts included (models/backends.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lit_mia.errors import ConfigError

FORMAT_VERSION = 1
"""Version of the entry layout / key scheme; bump it to invalidate every existing entry."""

WEIGHTS = "tensors.pt"
FIELDS = "fields.json"

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # lit_mia/
TRAINING_SOURCES = (
    "training.py",
    "fitting.py",
    "callbacks.py",
    "nets.py",
    "bounds.py",
    "targets",
    "data",
    "perturb",
    "models",  # the farms, base models, pools, update deltas and this cache
)
"""Modules (files, or packages = every .py below) of lit_mia/ whose code determines a cached
model; each must exist (a moved module fails here instead of leaving the key)."""

log = logging.getLogger("lit_mia.models.cache")


@functools.cache
def code_version() -> dict[str, str]:
    """{"lit_mia": package version, "source_sha256": hash of TRAINING_SOURCES} (see docstring).

    The hash covers each file's path relative to the package and its bytes, in sorted order.
    """
    try:
        version = importlib.metadata.version("lit_mia")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        version = "unknown"
    files: list[Path] = []
    for src in TRAINING_SOURCES:
        p = PACKAGE_DIR / src
        if not p.exists():
            raise FileNotFoundError(f"TRAINING_SOURCES names {src}, which is not in {PACKAGE_DIR}")
        files.extend(sorted(p.rglob("*.py")) if p.is_dir() else [p])
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return {"lit_mia": version, "source_sha256": h.hexdigest()}


def _array_digest(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    return {
        "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
        "shape": list(a.shape),
        "dtype": str(a.dtype),
    }


def canonical(obj: Any) -> Any:
    """JSON-ready canonical form of `obj` (see the module docstring); raises TypeError for
    anything it cannot represent faithfully (so an unhashable field is never silently dropped)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, DictConfig | ListConfig):
            obj = OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int | np.integer) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        if not math.isfinite(f):
            return {"float": repr(f)}  # JSON has no inf/nan
        return f
    if isinstance(obj, Tensor):
        return {"tensor": _array_digest(obj.detach().cpu().numpy())}
    if isinstance(obj, np.ndarray):
        return {"array": _array_digest(obj)}
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"cache field keys must be strings, got {k!r}")
            out[k] = canonical(v)
        return out
    if isinstance(obj, list | tuple):
        return [canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot use {type(obj).__name__} as a cache field: {obj!r}")


def canonical_json(fields: Mapping) -> str:
    """Canonical JSON text of `fields` plus the format and code versions (sorted keys, no
    spaces)."""
    doc = {"code": code_version(), "fields": canonical(fields), "format_version": FORMAT_VERSION}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class ModelCache:
    """Tensors of trained models on disk under ``root/kind/<key>/``.

    root: cache directory (created if missing); kind: a sub-directory per model family
    (e.g. "lira_shadow", "updates_leak"); key_name: the config key that set `root`, named in the
    ConfigError raised when the directory cannot be created or written.
    """

    def __init__(self, root: str | Path, kind: str, key_name: str = "attack.lira.cache_dir"):
        self.root = Path(root)
        self.kind = str(kind)
        self.key_name = key_name
        self.dir = self.root / self.kind
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.dir, prefix=".probe.")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise ConfigError(
                f"{key_name}={str(root)!r} is not a writable directory ({e.strerror or e}); "
                "set it to a directory you can write"
            ) from None

    @staticmethod
    def key(fields: Mapping) -> str:
        """sha256 hex digest of `canonical_json(fields)` (includes FORMAT_VERSION)."""
        return hashlib.sha256(canonical_json(fields).encode()).hexdigest()

    def path(self, fields: Mapping) -> Path:
        """Directory of the entry for `fields` (it may not exist)."""
        return self.dir / self.key(fields)

    def load(self, fields: Mapping, explain: bool = True) -> dict[str, Tensor] | None:
        """The stored tensors for `fields` (on CPU), or None on a miss: no entry, a stored
        fields.json that is not exactly `canonical_json(fields)`, or an unreadable file. A miss
        logs why (`explain_miss`) unless `explain` is false."""
        entry = self.path(fields)
        try:
            stored = (entry / FIELDS).read_text()
        except OSError:
            stored = None
        if stored != canonical_json(fields):
            if explain:
                self._log_miss(fields, 1, 1)
            return None
        try:
            data = torch.load(entry / WEIGHTS, map_location="cpu", weights_only=True)
        except Exception:  # missing, truncated or foreign file: retrain
            return None
        if not isinstance(data, dict) or not all(isinstance(v, Tensor) for v in data.values()):
            return None
        return data

    def load_many(self, many: list[Mapping]) -> list[dict[str, Tensor] | None]:
        """`load` of each entry of `many`, with one log line for all the misses (how many of
        how many, and why the first one missed) instead of one line per model."""
        out = [self.load(f, explain=False) for f in many]
        missed = [f for f, hit in zip(many, out, strict=True) if hit is None]
        if missed:
            self._log_miss(missed[0], len(missed), len(many))
        return out

    def _log_miss(self, fields: Mapping, n_missed: int, n: int) -> None:
        diff = self.explain_miss(fields)
        if diff:  # nothing cached of this kind yet: a first run, nothing to explain
            log.warning(
                "cache miss (%s): retraining %d of %d model(s); the nearest cached entry "
                "differs in %s",
                self.kind,
                n_missed,
                n,
                ", ".join(diff),
            )

    def explain_miss(self, fields: Mapping, limit: int = 6) -> list[str]:
        """Dotted names of the fields (``code.source_sha256``, ``fields.seed``, ...) in which
        the nearest stored entry of this kind differs from `fields` (fewest differences; at
        most `limit` names, then "... (N more)"); [] when the kind holds no other entry."""
        want = _flat(json.loads(canonical_json(fields)))
        best: list[str] | None = None
        for path in self.dir.glob(f"*/{FIELDS}"):
            if path.parent.name.startswith("."):  # a writer's folder, not an entry
                continue
            try:
                have = _flat(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
            diff = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
            if diff and (best is None or len(diff) < len(best)):
                best = diff
        if not best:
            return []
        more = len(best) - limit
        return best[:limit] + ([f"... ({more} more)"] if more > 0 else [])

    def save(self, fields: Mapping, tensors: Mapping[str, Tensor]) -> Path:
        """Store `tensors` (detached, moved to CPU) for `fields` (`publish`); returns the entry
        directory."""
        self.publish(fields, tensors)
        return self.path(fields)

    def publish(self, fields: Mapping, tensors: Mapping[str, Tensor]) -> bool:
        """Store `tensors` for `fields` unless a complete entry is there; True when this call's
        entry is the stored one.

        The entry is written into a fresh hidden folder beside it (weights, then fields.json,
        each fsynced) and renamed into place in one step, so a reader sees no entry or a
        complete one, on a local disk or a shared folder every node mounts, and a writer killed
        midway leaves only its hidden folder (never read). When two writers race (two attempts
        of one model on two nodes), the first rename wins and the other's copy is dropped. An
        incomplete or stale folder under the entry's name (an older layout, a hand edit) is
        replaced."""
        text = canonical_json(fields)
        entry = self.path(fields)
        if self.load(fields, explain=False) is not None:
            return False
        data = {str(k): v.detach().cpu().clone() for k, v in tensors.items()}
        tmp = Path(tempfile.mkdtemp(dir=self.dir, prefix=f".{entry.name}."))
        try:
            _atomic_write(tmp / WEIGHTS, lambda f: torch.save(data, f))
            _atomic_write(tmp / FIELDS, lambda f: f.write(text.encode()))
            for _ in range(2):
                try:
                    os.rename(tmp, entry)  # atomic; refused while `entry` holds files
                    return True
                except OSError:
                    if self.load(fields, explain=False) is not None:
                        return False  # another writer won
                    _discard(entry)  # incomplete or stale: move it aside, try once more
            return False
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _discard(entry: Path) -> None:
    """Rename `entry` to a hidden name, then delete it (a reader never sees it half gone)."""
    trash = entry.with_name(f".{entry.name}.stale.{os.getpid()}.{time.monotonic_ns()}")
    try:
        os.rename(entry, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _flat(doc: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {"a.b.c": leaf}; lists and digests stay leaves."""
    if not isinstance(doc, dict) or not doc or {"sha256", "array", "tensor"} & doc.keys():
        return {prefix: json.dumps(doc, sort_keys=True)}
    out: dict[str, Any] = {}
    for k, v in doc.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
    return out


__all__ = ["FORMAT_VERSION", "ModelCache", "canonical", "canonical_json", "code_version"]
