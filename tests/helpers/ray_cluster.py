"""A real Ray cluster on this machine for the farm tests: `ray start --head` plus worker nodes
(`ray start --address=...`), each node's processes in a process group of their own so a test
can kill one node with SIGKILL (a machine lost mid-farm) and the teardown ends exactly the
processes it started (never `ray stop`, which would end every Ray process of the machine).

Nodes run with this checkout first on PYTHONPATH, so their workers import the same lit_mia
(and tests package) as the test process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers.runif import ray_command

REPO = Path(__file__).resolve().parents[2]
OBJECT_STORE_BYTES = 150 * 1024 * 1024  # per node: the farms' tensors are small
START_TIMEOUT_S = 180


def free_port() -> int:
    """A TCP port nothing listens on now, outside Ray's default worker range (10002-19999)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not 10000 <= port < 20000:
            return port
    raise RuntimeError("no free port outside 10000-19999")


class RayCluster:
    """Head and worker nodes of one cluster; `stop` kills what it started."""

    def __init__(self) -> None:
        # unix socket paths must stay short: a temp dir under /tmp, not pytest's tmp_path
        self.temp = Path(tempfile.mkdtemp(prefix="lmray", dir="/tmp"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.groups: list[int] = []  # process group ids of the nodes
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).strip(":")
        self.env = env

    def _start(self, args: list[str]) -> int:
        cmd = [ray_command(), "start", *args, "--disable-usage-stats",
               f"--object-store-memory={OBJECT_STORE_BYTES}"]  # fmt: skip
        proc = subprocess.Popen(
            cmd, env=self.env, cwd=self.temp, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.groups.append(proc.pid)  # its daemons stay in this group after it exits
        try:
            out, _ = proc.communicate(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"ray start {args[0]} took over {START_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed ({proc.returncode}):\n{out[-3000:]}")
        return proc.pid

    def start_head(self, num_cpus: int = 1) -> str:
        self._start(["--head", f"--port={self.port}", f"--num-cpus={num_cpus}",
                     f"--temp-dir={self.temp / 't'}", "--include-dashboard=false"])  # fmt: skip
        return self.address

    def add_worker(self, num_cpus: int = 1) -> int:
        """Start a worker node; returns its process group id (for `kill_node`)."""
        before = self.alive_nodes()
        pgid = self._start([f"--address={self.address}", f"--num-cpus={num_cpus}"])
        self.wait_nodes(before + 1)
        return pgid

    def alive_nodes(self) -> int:
        import ray

        if not ray.is_initialized():
            return 1  # the head (the driver connects after start_head)
        return sum(1 for n in ray.nodes() if n["Alive"])

    def wait_nodes(self, n: int, timeout: float = 60.0) -> None:
        import ray

        if not ray.is_initialized():
            return
        t0 = time.monotonic()
        while self.alive_nodes() < n:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"the cluster has {self.alive_nodes()} nodes, not {n}")
            time.sleep(0.5)
        del ray

    @staticmethod
    def kill_node(pgid: int) -> None:
        """SIGKILL every process of one node (its raylet, object store, workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def stop(self) -> None:
        """Kill every node started here (workers first), then remove the temp dir."""
        for pgid in reversed(self.groups):
            self.kill_node(pgid)
        self.groups.clear()
        time.sleep(0.5)
        shutil.rmtree(self.temp, ignore_errors=True)


def marked_train(shared: dict, group: list[int]):
    """A `Population.train` for the lost-node test: for each model of the group, a marker file
    `<model>.<node id>.<attempt pid>` in shared["marks"] (who started it, where), then
    shared["sleep"] seconds (the window in which the test kills the node), then the real
    reference training of lit_mia.models.reference_models.train_references."""
    import ray

    from lit_mia.models.reference_models import train_references

    node = ray.get_runtime_context().get_node_id()
    for i in group:
        Path(shared["marks"], f"{i}.{node}.{os.getpid()}").touch()
    time.sleep(shared["sleep"])
    return train_references(shared["inner"], group)


__all__ = ["RayCluster", "free_port", "marked_train"]
