"""The ray backend of models/backends.py: one Ray task per group of models.

`connect` joins the cluster at ``farm.address`` (probing its GCS port first, so a wrong
address is a one-line ConfigError in seconds rather than a hanging ``ray.init``) or starts a
local Ray when the address is empty; a process stays connected to one cluster. `run_groups`
puts the population's shared inputs into the object store once, submits one task per group
(``num_cpus`` / ``num_gpus`` from the settings, ``max_retries``: a group whose worker or node
dies is rerun elsewhere; an exception raised by the training code is not retried) and yields
each group as it finishes, with the node that trained it.

A task trains through backends.train_group, which skips models the cache already holds (a
rerun of a group whose first attempt stored them before its node died) and stores new ones
with ModelCache.publish (write-then-rename, first writer wins), so a retry never trains a
stored model into the cache twice. With a cache the task returns no tensors (the driver reads
the cache: its folder must be shared by every node); without one the results travel back
through the object store. Each task also reports its node's lit_mia code hash: a node running
other code would key its models differently, so the run stops with an error naming the node.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Iterator
from typing import Any

from lit_mia.errors import ConfigError
from lit_mia.models.cache import ModelCache, code_version
from lit_mia.models.farm_settings import probe, require_ray
from lit_mia.models.groups import even_size, groups_of, progress_line, train_group

_connected: dict[str, str] = {}


def connect(address: str) -> None:
    """ray.init for `address` ("" = a new local Ray, "auto", or host:port), once per process
    (a different address shuts the previous connection down first; a process that called
    ray.init itself keeps its own connection)."""
    require_ray()
    import ray

    address = str(address)
    if ray.is_initialized() and _connected.get("address", address) == address:
        return  # connected here before, or the caller's own ray.init: keep it
    if ray.is_initialized():
        ray.shutdown()
    if address not in ("", "auto"):
        probe(address)
    kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                              logging_level="WARNING")  # fmt: skip
    try:
        ray.init(address=address or None, **kw)
    except (ConnectionError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"farm.address={address!r}: cannot join the Ray cluster: {first}"
        ) from None
    _connected["address"] = address


def _task(train, shared, group, fields, cache_spec, threads) -> dict[str, Any]:
    """One group on a Ray worker (see the module docstring)."""
    import ray

    cache = ModelCache(*cache_spec) if cache_spec is not None else None
    results, note, seconds = train_group(train, shared, group, fields, cache, threads)
    ctx = ray.get_runtime_context()
    return {
        "results": None if cache is not None else results,
        "node": ctx.get_node_id(),
        "host": socket.gethostname(),
        "seconds": seconds,
        "note": note,
        "code": code_version()["source_sha256"],
    }


@functools.cache
def _remote():
    import ray

    return ray.remote(_task)


def task_slots(num_cpus: float, num_gpus: float) -> int:
    """How many tasks of this size the cluster runs at once (its CPUs, or GPUs when asked)."""
    import ray

    res = ray.cluster_resources()
    if num_gpus > 0:
        return max(1, int(res.get("GPU", 0) // num_gpus))
    return max(1, int(res.get("CPU", 1) // num_cpus))


def run_groups(pop, todo: list[int], farm, cache: ModelCache | None) -> Iterator[tuple]:
    """Yield (group, results or None, note, node, host, seconds) per finished group."""
    import ray

    connect(str(farm.address))
    cpus, gpus = float(farm.num_cpus), float(farm.num_gpus)
    size = farm.group_size
    if size is None:
        size = even_size(len(todo), task_slots(cpus, gpus), pop.chunk)
    threads = int(farm.threads) if farm.threads is not None else max(1, int(cpus))
    spec = None if cache is None else (str(cache.root.resolve()), cache.kind, cache.key_name)
    train_ref, shared_ref = ray.put(pop.train), ray.put(pop.shared)
    remote = _remote().options(num_cpus=cpus, num_gpus=gpus, max_retries=int(farm.max_retries),
                               retry_exceptions=False)  # fmt: skip
    pending = {}
    for group in groups_of(todo, int(size)):
        fields = [pop.fields[i] for i in group]
        ref = remote.remote(train_ref, shared_ref, group, fields, spec, threads)
        pending[ref] = group
    mine, done = code_version()["source_sha256"], 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                group = pending.pop(ref)
                out = ray.get(ref)
                if out["code"] != mine:
                    raise RuntimeError(
                        f"{pop.what}: node {out['node'][:8]} ({out['host']}) runs lit_mia code "
                        "that differs from the driver's (its models would be cached under other "
                        "keys); install the same lit_mia on every node"
                    )
                for i in group:
                    done += 1
                    progress_line(pop, i, done, len(todo), out["node"], out["host"],
                                  out["seconds"])  # fmt: skip
                yield group, out["results"], out["note"], out["node"], out["host"], out["seconds"]
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


__all__ = ["connect", "run_groups", "task_slots"]
