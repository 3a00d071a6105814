"""Index pools and update sets of Updates-Leak (Salem et al. USENIX Security'20, §3.4, §4.1).

The paper splits each data set into disjoint target, shadow and probing sets, and each side
into a base-model training set and an update set. Here one permutation of range(n_total) from
numpy's default_rng(seed) is cut into consecutive blocks, in this order:

    shadow_base  (base_size)    trains the shadow base model
    shadow_pool  (shadow_pool)  the shadow update sets are drawn from it
    target_base  (base_size)    trains the target base model
    target_pool  (target_pool)  the target update sets are drawn from it
    probe        (n_probe)      the probing set queried before and after every update

The adversary's own data (autoencoder training, baselines) is shadow_base + shadow_pool.

Update set i of a side holds k distinct pool samples, drawn without replacement: samples come
from a shuffled queue of the pool that is refilled (reshuffled) only once every sample has been
used, so with m * k <= pool size no sample occurs twice (k = 1: every update is a distinct
image) and beyond that every sample is used equally often, +-1 (the paper's m = 10,000 sets of
100 samples need reuse too). With `label_dirichlet` = 0 the queue holds the whole pool; with
alpha > 0 and k > 1 the set's label mix p ~ Dirichlet(alpha * 1) first, then k labels ~ p,
each class drawn from its own queue (A_LDE needs varied label distributions; with plain
draws of k = 100 every histogram is close to the pool's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lit_mia.errors import ConfigError

BLOCKS = ("shadow_base", "shadow_pool", "target_base", "target_pool", "probe")


@dataclass(frozen=True)
class UpdatePools:
    """Disjoint int64 index arrays (checked at construction)."""

    shadow_base: np.ndarray
    shadow_pool: np.ndarray
    target_base: np.ndarray
    target_pool: np.ndarray
    probe: np.ndarray

    def __post_init__(self) -> None:
        check_disjoint({b: getattr(self, b) for b in BLOCKS})

    @property
    def adversary(self) -> np.ndarray:
        """The adversary's local data: shadow base + shadow pool."""
        return np.concatenate([self.shadow_base, self.shadow_pool])

    def to_dict(self) -> dict[str, list[int]]:
        return {b: getattr(self, b).tolist() for b in BLOCKS}


def check_disjoint(sets: dict[str, np.ndarray]) -> None:
    """ConfigError naming the two sets that overlap (e.g. the probe set and an update pool)."""
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = np.intersect1d(sets[a], sets[b])
            if common.size:
                raise ConfigError(
                    f"updates: the {a} and {b} index sets overlap in {common.size} samples "
                    f"(e.g. {common[:5].tolist()}); they must be disjoint"
                )


def block_sizes(u) -> dict[str, int]:
    """Block sizes from the `updates` settings."""
    return {
        "shadow_base": int(u.base_size),
        "shadow_pool": int(u.shadow_pool),
        "target_base": int(u.base_size),
        "target_pool": int(u.target_pool),
        "probe": int(u.n_probe),
    }


def make_pools(n_total: int, u, seed: int) -> UpdatePools:
    """Cut default_rng(seed).permutation(n_total) into the blocks of `block_sizes(u)`."""
    sizes = block_sizes(u)
    need = sum(sizes.values())
    if need > n_total:
        raise ConfigError(
            f"updates.n_probe: the probe set would overlap the update pools: 2 * "
            f"updates.base_size + updates.shadow_pool + updates.target_pool + updates.n_probe "
            f"= {need} must be <= {n_total} samples of the data set"
        )
    perm = np.random.default_rng(seed).permutation(n_total)
    out, start = {}, 0
    for b in BLOCKS:
        out[b] = np.sort(perm[start : start + sizes[b]]).astype(np.int64)
        start += sizes[b]
    return UpdatePools(**out)


class _Queue:
    """Positions 0..n-1 in shuffled rounds: a position comes back only after all others."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n, self.rng = n, rng
        self.q, self.i = rng.permutation(n), 0

    def take(self, k: int) -> np.ndarray:
        """k distinct positions (k <= n)."""
        got = self.q[self.i : self.i + k]
        self.i += got.size
        if got.size < k:  # refill; positions already in this draw go last, so k stay distinct
            q = self.rng.permutation(self.n)
            used = np.isin(q, got)
            self.q, self.i = np.concatenate([q[~used], q[used]]), k - got.size
            got = np.concatenate([got, self.q[: self.i]])
        return got


def sample_update_sets(
    pool: np.ndarray, labels: np.ndarray, m: int, k: int, rng: np.random.Generator, alpha: float
) -> np.ndarray:
    """[m, k] dataset indices: m update sets of k distinct samples of `pool`, without
    replacement until the pool (or a class of it) is used up (module docstring).

    labels: label of every pool sample (aligned with pool). alpha > 0: per-set label mix
    ~ Dirichlet(alpha); a class with fewer than its drawn count is topped up from the rest.
    """
    pool = np.asarray(pool)
    if k > pool.size:
        raise ConfigError(f"updates.k must be <= the update pool size {pool.size}, got {k}")
    if m < 1 or k < 1:
        raise ConfigError(f"updates: need m >= 1 update sets of k >= 1 samples, got {m}, {k}")
    if alpha <= 0 or k == 1:  # one sample has no label mix: plain draws
        q = _Queue(pool.size, rng)
        return np.stack([pool[q.take(k)] for _ in range(m)])
    classes = np.unique(labels)
    by_class = [np.flatnonzero(labels == c) for c in classes]
    queues = [_Queue(b.size, rng) for b in by_class]
    sets = np.empty((m, k), dtype=np.int64)
    for i in range(m):
        counts = rng.multinomial(k, rng.dirichlet(np.full(classes.size, float(alpha))))
        picked = [b[q.take(min(n, b.size))] for b, q, n in zip(by_class, queues, counts)]
        chosen = np.concatenate(picked)
        if chosen.size < k:  # a class ran short: top up uniformly from the rest
            rest = np.setdiff1d(np.arange(pool.size), chosen)
            chosen = np.concatenate([chosen, rng.choice(rest, k - chosen.size, replace=False)])
        sets[i] = pool[rng.permutation(chosen)]
    return sets


def set_usage(sets: np.ndarray) -> tuple[int, int]:
    """(distinct samples, the most times one sample occurs) over all update sets."""
    _, counts = np.unique(np.asarray(sets), return_counts=True)
    return int(counts.size), int(counts.max())


__all__ = ["BLOCKS", "UpdatePools", "block_sizes", "check_disjoint", "make_pools"]
__all__ += ["sample_update_sets", "set_usage"]
