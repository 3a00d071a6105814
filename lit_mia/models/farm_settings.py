"""`farm.*`: where every trained population runs (models/backends.py).

backend: local (this process, group after group) | ray (one Ray task per group, on a running
cluster or a local Ray). address: the cluster's GCS address ``host:port`` (what ``ray start
--head`` prints; ``make cluster`` starts one on 127.0.0.1:6380), ``auto`` (the cluster this
machine's ``ray start`` joined), or empty = start a local Ray inside the run. num_cpus /
num_gpus: what each task asks the Ray scheduler for. threads: torch threads while a group
trains, null = the process's default on the local backend and floor(num_cpus) (at least 1)
inside a Ray task; set it for bit-identical numbers across backends (the same thread count on
both sides). group_size: models per group (one task; the vmap batch stays inside it), null =
the farm's own chunk on the local backend and the todo split evenly over the cluster's task
slots on the ray backend. max_retries: how often Ray reruns a group whose worker died.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass

from lit_mia.errors import ConfigError, require, unknown_name

BACKENDS = ("local", "ray")
PROBE_TIMEOUT_S = 3.0
"""Seconds to wait for the TCP handshake with `farm.address` before calling it unreachable."""
_HOST_PORT = re.compile(r"^(?:ray://)?(\[[0-9a-fA-F:]+\]|[^:/\s]+):(\d{1,5})$")


@dataclass
class FarmSettings:
    """`farm`: where every trained population runs (LiRA/RMIA reference models, calibration
    shadow models, update-leakage base models), through lit_mia/models/backends.py. backend
    local trains group after group in this process; ray runs one Ray task per group (the
    vmap batch stays inside the task) on the cluster at `address`, retrying a group whose
    node died, and every task stores its models in the model cache, which must then be a
    folder every node mounts (`attack.lira.cache_dir`, `updates.cache_dir`). See the how-to
    page "Reference models on a Ray cluster"."""

    backend: str = "local"  # local | ray
    address: str = ""  # ray: host:port of a Ray head (GCS), auto, or empty = a local Ray
    num_cpus: float = 1.0  # CPUs each Ray task asks for
    num_gpus: float = 0.0  # GPUs each Ray task asks for (fractions share a GPU)
    threads: int | None = (
        None  # torch threads in a group; null = local: unchanged, ray: floor(num_cpus)
    )
    group_size: int | None = (
        None  # models per group (task); null = local: 32, ray: even split over the task slots
    )
    max_retries: int = 3  # reruns of a group whose worker or node died (Ray max_retries)

    @classmethod
    def validate(cls, f, cfg=None) -> None:
        """ConfigError naming the key for a bad `farm.*` value; with backend ray, a cluster
        address that does not answer within PROBE_TIMEOUT_S is one too (so a wrong address
        fails in seconds, before anything trains, instead of ray.init waiting)."""
        if f.backend not in BACKENDS:
            raise unknown_name("farm.backend", f.backend, BACKENDS)
        require(f.num_cpus > 0, "farm.num_cpus", "> 0", f.num_cpus)
        require(f.num_gpus >= 0, "farm.num_gpus", ">= 0", f.num_gpus)
        require(f.threads is None or f.threads >= 1, "farm.threads", ">= 1 or null", f.threads)
        require(f.group_size is None or f.group_size >= 1, "farm.group_size", ">= 1 or null",
                f.group_size)  # fmt: skip
        require(f.max_retries >= 0, "farm.max_retries", ">= 0", f.max_retries)
        address = str(f.address)
        require(address in ("", "auto") or bool(_HOST_PORT.match(address)), "farm.address",
                "empty (a local Ray), auto, or host:port of a Ray head", address)  # fmt: skip
        if f.backend == "ray":
            require_ray()
            if address not in ("", "auto"):
                probe(address)


def farm_of(cfg) -> FarmSettings:
    """The `farm` section of an experiment config (the defaults when it has none)."""
    f = getattr(cfg, "farm", None) if cfg is not None else None
    return f if f is not None else FarmSettings()


def require_ray() -> None:
    """ConfigError unless the ray package imports (it is the `ray` extra of lit_mia)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError(
            "farm.backend=ray needs the ray package: pip install 'lit_mia[ray]' (or ray) on the "
            "driver and every node"
        ) from None


def host_port(address: str) -> tuple[str, int]:
    """(host, port) of ``host:port`` / ``ray://host:port`` (IPv6 in brackets)."""
    m = _HOST_PORT.match(address)
    if m is None:
        raise ConfigError(f"farm.address must be host:port, got {address!r}")
    return m.group(1).strip("[]"), int(m.group(2))


_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"""An HTTP/2 client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS) answers it
with a SETTINGS frame of its own."""


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """ConfigError (one line) unless a gRPC server answers at `address` within `timeout`
    seconds: the TCP connection opens and an HTTP/2 SETTINGS frame comes back (a bare TCP
    accept is not enough: a proxy or another service would leave ray.init waiting)."""
    host, port = host_port(address)
    deadline = time.monotonic() + timeout
    why = ""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            s.sendall(_H2_PREFACE)
            head = b""
            while len(head) < 9:
                chunk = s.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
            if len(head) == 9 and head[3] == 4:
                return
            why = "something answers there, but not a Ray head (no gRPC)"
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
    raise ConfigError(
        f"farm.address={address!r}: no Ray cluster answers there ({why}; waited at most "
        f"{timeout:g} s); start one (`make cluster`, or `ray start --head` on the head "
        "machine) or leave farm.address empty for a local Ray"
    )


__all__ = ["BACKENDS", "FarmSettings", "farm_of", "host_port", "probe", "require_ray"]
