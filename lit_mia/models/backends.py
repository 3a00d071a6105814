"""The one seam through which every trained population runs: `train_population`.

A population is N models of one kind (LiRA/RMIA reference models, calibration shadow models,
update-leakage base models), each with its cache key (`fields`, models/cache.py) or None (not
cached), and one function ``train(shared, indices) -> [result per index]`` that trains a
*group* of them (the shadow farm's vmap batch stays inside it). `train_population`

1. reads the cache in the driver: models already stored are not trained again (a rerun, or a
   rerun after a crash, trains only what is missing);
2. splits the missing models into groups (`farm.group_size`);
3. trains each group on the configured backend (`farm.backend`, models/farm_settings.py):
   ``local``, group after group in this process; ``ray``, one Ray task per group
   (models/ray_backend.py) asking for ``farm.num_cpus`` / ``farm.num_gpus``, retried on
   another node when its worker dies (``farm.max_retries``); models/groups.py trains one
   group wherever it runs;
4. stores each new model in the cache from where it was trained (`ModelCache.publish`: written
   to a temporary folder, then renamed into place, so no half-written entry is ever readable;
   when two attempts race, the first rename wins and the other is dropped), and the driver reads
   the cache back (on the ray backend the cache folder must be one every node mounts, e.g. NFS).

Same numbers on both backends: a group's models depend only on their own seeds (the farm's
randomness is per model, models/shadow_farm.py), so the grouping does not change them;
`farm.threads` fixes torch's thread count inside every group (the ray backend's default is
floor(num_cpus)), which is what keeps floats bit-identical across backends on one machine.

Every trained model gets a row in `placements` (population, model, node, host, seconds) that
the run logs (tracking.log_placements), and on the ray backend one progress line as it
finishes, wherever in the cluster it trained.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lit_mia.models.cache import ModelCache
from lit_mia.models.groups import groups_of, train_group

LOCAL_NODE = "local"
PLACEMENTS_KEY = "farm_placements"
"""`ctx.shared` key of a target run's list of `Placement` (which node trained what)."""


@dataclass
class Population:
    """N models to train. what: their name in progress lines and placements ("lira
    reference"); fields: one cache key per model (None: not cached); train(shared, indices):
    the models `indices` (a group) as a list of results (state dicts when cached), or a pair
    (results, note) with a short note on how they were trained ("vmap"); train must be a
    module-level function (it is pickled by reference); shared: the read-only inputs of
    `train` (data, the nets' factory), shipped once per cluster; chunk: the local backend's
    group size when farm.group_size is null; first: the population index of model 0 (progress
    lines and placements count from it)."""

    what: str
    fields: Sequence[Mapping | None]
    train: Callable[[Any, list[int]], Any]
    shared: Any = None
    chunk: int = 32
    first: int = 0

    def __len__(self) -> int:
        return len(self.fields)


@dataclass
class Placement:
    """Where model `model` of population `what` was trained: Ray node id (LOCAL_NODE on the
    local backend), host name, the group's seconds and size, the train function's note."""

    what: str
    model: int
    node: str
    host: str
    seconds: float
    group_size: int
    note: str = ""

    def row(self) -> dict[str, Any]:
        return {"population": self.what, "model": self.model, "node": self.node,
                "host": self.host, "seconds": round(self.seconds, 3),
                "group_size": self.group_size, "note": self.note}  # fmt: skip


def train_population(
    pop: Population,
    farm,
    cache: ModelCache | None = None,
    placements: list | None = None,
) -> list[Any]:
    """Results of all N models of `pop` (cached, or trained now on `farm.backend`); see the
    module docstring. farm: the `farm` settings (models/farm_settings.py); placements: a list
    that receives one `Placement` per model trained now."""
    n = len(pop)
    out: list[Any] = [None] * n
    keyed = [i for i in range(n) if pop.fields[i] is not None and cache is not None]
    if keyed:
        for i, hit in zip(keyed, cache.load_many([pop.fields[i] for i in keyed]), strict=True):
            out[i] = hit
    todo = [i for i in range(n) if out[i] is None]
    if not todo:
        return out
    backend = str(farm.backend)
    if backend == "ray":
        from lit_mia.models import ray_backend

        done = ray_backend.run_groups(pop, todo, farm, cache)
    else:
        done = _run_local(pop, todo, farm, cache)
    for group, results, note, node, host, seconds in done:
        if results is None:  # stored by the worker: the driver reads the cache
            results = cache.load_many([pop.fields[i] for i in group])
            missing = [pop.first + i for i, r in zip(group, results, strict=True) if r is None]
            if missing:
                raise RuntimeError(
                    f"{pop.what}: models {missing} were trained on node {node} but are not in "
                    f"the cache at {cache.dir}; on the ray backend the cache folder must be one "
                    "every node mounts (attack.lira.cache_dir / updates.cache_dir)"
                )
        for i, r in zip(group, results, strict=True):
            out[i] = r
            if placements is not None:
                placements.append(
                    Placement(pop.what, pop.first + i, node, host, seconds, len(group), note)
                )
    return out


def _run_local(pop: Population, todo, farm, cache):
    size = int(farm.group_size) if farm.group_size is not None else pop.chunk
    host = socket.gethostname()
    for group in groups_of(todo, size):
        fields = [pop.fields[i] for i in group]
        results, note, seconds = train_group(
            pop.train, pop.shared, group, fields, cache, farm.threads
        )
        yield group, results, note, LOCAL_NODE, host, seconds


def fit_each(shared: dict, group: list[int]) -> list[Any]:
    """A `Population.train` of models trained one by one: ``shared["fit"](sets[i], seeds[i])``
    for each i of the group (the calibration shadow models: Lightning fits like the target)."""
    return [shared["fit"](shared["sets"][i], shared["seeds"][i]) for i in group]


def placement_rows(placements: Sequence[Placement]) -> list[dict[str, Any]]:
    """The rows of a run's placements table (what tracking.log_placements writes)."""
    return [p.row() for p in placements]


__all__ = [
    "LOCAL_NODE",
    "PLACEMENTS_KEY",
    "Placement",
    "Population",
    "fit_each",
    "placement_rows",
    "train_population",
]
