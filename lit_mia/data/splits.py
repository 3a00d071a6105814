"""Membership splits: disjoint index sets over one data-set pool, built from a seed.

One permutation of range(n_total) from numpy's default_rng(seed) (PCG64) is cut into
consecutive blocks, in this order:

  members     target training set (the positive class of every attack metric)
  validation  target early stopping / model selection (never non-members)
  nonmembers  evaluation only (the negative class)
  shadow      shadow-model pool; `shadow_halves()` = (shadow "in", shadow "out")
  probe       probe pool (e.g. update-leakage probes, calibration data)

Because blocks are taken in this order, growing a later block (say n_shadow) leaves the earlier
ones unchanged for the same seed. The split checks its own disjointness at construction and is
logged as a JSON artifact (`to_dict` / `save_json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lit_mia.errors import ConfigError

SETS = ("members", "validation", "nonmembers", "shadow", "probe")


def _as_index_array(a: Any) -> np.ndarray:
    arr = np.array(a, dtype=np.int64).reshape(-1)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class MembershipSplit:
    """Disjoint int64 index arrays into a data-set pool of `n_total` samples."""

    members: np.ndarray
    validation: np.ndarray
    nonmembers: np.ndarray
    shadow: np.ndarray
    probe: np.ndarray
    seed: int
    n_total: int

    def __post_init__(self) -> None:
        for name in SETS:  # int64, 1-D, read-only
            object.__setattr__(self, name, _as_index_array(getattr(self, name)))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "n_total", int(self.n_total))
        self.check()

    def check(self) -> None:
        """Raise AssertionError unless every set is unique, in [0, n_total) and disjoint."""
        for name in SETS:
            a = getattr(self, name)
            if a.size and (a.min() < 0 or a.max() >= self.n_total):
                raise AssertionError(f"split: {name} has indices outside [0, {self.n_total})")
            if np.unique(a).size != a.size:
                raise AssertionError(f"split: {name} has repeated indices")
        for i, a in enumerate(SETS):
            for b in SETS[i + 1 :]:
                common = np.intersect1d(getattr(self, a), getattr(self, b))
                if common.size:
                    raise AssertionError(
                        f"split: {a} and {b} overlap in {common.size} indices "
                        f"(e.g. {common[:5].tolist()})"
                    )

    def shadow_halves(self) -> tuple[np.ndarray, np.ndarray]:
        """(shadow in, shadow out): first and second half of `shadow`, equal sizes.

        With an odd number of shadow indices the last one is left out.
        """
        half = self.shadow.size // 2
        return self.shadow[:half], self.shadow[half : 2 * half]

    def sizes(self) -> dict[str, int]:
        return {name: int(getattr(self, name).size) for name in SETS}

    def to_dict(self) -> dict[str, list[int] | int]:
        d: dict[str, list[int] | int] = {name: getattr(self, name).tolist() for name in SETS}
        d["seed"] = self.seed
        d["n_total"] = self.n_total
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MembershipSplit:
        return cls(**{name: d[name] for name in SETS}, seed=d["seed"], n_total=d["n_total"])

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load_json(cls, path: str | Path) -> MembershipSplit:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MembershipSplit):
            return NotImplemented
        return (self.seed, self.n_total) == (other.seed, other.n_total) and all(
            np.array_equal(getattr(self, n), getattr(other, n)) for n in SETS
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays


def _count(key: str, value: Any, minimum: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def make_split(
    n_total: int,
    n_members: int,
    n_nonmembers: int,
    n_validation: int = 0,
    n_shadow: int = 0,
    n_probe: int = 0,
    seed: int = 0,
    dataset: str | None = None,
) -> MembershipSplit:
    """Cut one seeded permutation of range(n_total) into the five disjoint sets.

    `dataset` only names the data set in error messages. Same arguments -> identical arrays.
    """
    n_total = _count("n_total", n_total, 1)
    seed = _count("seed", seed, 0)
    counts = {  # order = block order in the permutation
        "members": _count("data.n_members", n_members, 1),
        "validation": _count("data.n_validation", n_validation, 0),
        "nonmembers": _count("data.n_nonmembers", n_nonmembers, 1),
        "shadow": _count("data.n_shadow", n_shadow, 0),
        "probe": _count("data.n_probe", n_probe, 0),
    }
    total = sum(counts.values())
    if total > n_total:
        keys = " + ".join(f"data.n_{k}" for k in counts)
        of = f" {dataset}" if dataset else ""
        raise ConfigError(
            f"{keys} = {total} ({' + '.join(str(v) for v in counts.values())}) exceeds the "
            f"{n_total} samples of the{of} dataset"
        )
    perm = np.random.default_rng(seed).permutation(n_total).astype(np.int64)
    bounds = np.cumsum([0, *counts.values()])
    blocks = {k: perm[bounds[i] : bounds[i + 1]] for i, k in enumerate(counts)}
    return MembershipSplit(**blocks, seed=seed, n_total=n_total)
