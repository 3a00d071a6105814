"""One group of a population, where it trains (the driver or a Ray worker), and the helpers
both backends share (models/backends.py, models/ray_backend.py): splitting the missing models
into groups, torch's thread count inside a group, the progress line of a finished model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import contextmanager

import torch

from lit_mia.models.cache import ModelCache
from lit_mia.progress import say


def groups_of(todo: Sequence[int], size: int) -> list[list[int]]:
    """`todo` in consecutive groups of at most `size` (the last one shorter)."""
    todo = list(todo)
    return [todo[i : i + size] for i in range(0, len(todo), max(1, int(size)))]


def even_size(n: int, slots: int, cap: int) -> int:
    """Group size splitting n models over `slots` parallel tasks, at most `cap` per group."""
    return max(1, min(int(cap), math.ceil(n / max(1, int(slots)))))


@contextmanager
def torch_threads(n: int | None):
    """torch.set_num_threads(n) inside the block (None: unchanged), restored after."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train_group(pop_train, shared, group, fields, cache: ModelCache | None, threads):
    """Train one group where this runs (the driver, or a Ray worker) and store its models.

    A model whose entry is already complete in the cache is not trained (a retried group
    whose first attempt stored it); returns (results, note, seconds): results are None when
    the cache holds them all (the driver reads the cache)."""
    t0 = time.perf_counter()
    if cache is not None and all(
        f is not None and cache.load(f, explain=False) is not None for f in fields
    ):
        return None, "cached", time.perf_counter() - t0
    with torch_threads(threads):
        results = pop_train(shared, list(group))
    note = ""
    if isinstance(results, tuple):
        results, note = results
    if len(results) != len(group):
        raise RuntimeError(f"a group of {len(group)} models returned {len(results)} results")
    if cache is not None:
        for f, r in zip(fields, results, strict=True):
            if f is not None:
                cache.publish(f, r)
    return results, str(note), time.perf_counter() - t0


def progress_line(pop, i: int, done: int, todo: int, node: str, host: str,
                  seconds: float) -> None:  # fmt: skip
    """One line per finished model: `reference model 3 trained on node 1a2b3c4d (host),
    5/16 done, group 2.1 s`."""
    say(f"{pop.what} {pop.first + i} trained on node {node[:8]} ({host}), {done}/{todo} done, "
        f"group {seconds:.1f} s")  # fmt: skip


__all__ = ["even_size", "groups_of", "progress_line", "torch_threads", "train_group"]
