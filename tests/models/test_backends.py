"""The farm seam (lit_mia/models/backends.py) on the local backend, the cache's
write-then-rename publication under racing writers and killed writers, and the `farm.*`
settings (an unreachable farm.address: one line, exit 2). The ray backend on a real cluster:
tests/models/test_ray_backend.py."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lit_mia import config
from lit_mia.errors import ConfigError
from lit_mia.models.backends import LOCAL_NODE, Population, placement_rows, train_population
from lit_mia.models.cache import FIELDS, WEIGHTS, ModelCache
from lit_mia.models.farm_settings import FarmSettings, probe
from lit_mia.models.groups import even_size, groups_of
from tests.helpers.ray_cluster import free_port

REPO = Path(__file__).resolve().parents[2]


def _square(shared, group):
    """A population whose model i is the tensor i**2 (and the groups it came in)."""
    shared["calls"].append(list(group))
    return [{"w": torch.tensor([float(i) ** 2])} for i in group]


def _pop(n, calls, first=0):
    fields = [{"model": first + i} for i in range(n)]
    return Population("toy", fields, _square, {"calls": calls}, chunk=3, first=first)


def test_local_backend_groups_caches_and_records_placements(tmp_path) -> None:
    cache = ModelCache(tmp_path, "toy")
    calls, placed = [], []
    out = train_population(_pop(7, calls), FarmSettings(), cache, placed)
    assert [float(r["w"]) for r in out] == [float(i * i) for i in range(7)]
    assert calls == [[0, 1, 2], [3, 4, 5], [6]]  # the population's chunk when group_size=null
    assert [p.model for p in placed] == list(range(7))
    assert {p.node for p in placed} == {LOCAL_NODE}
    assert placement_rows(placed)[6]["group_size"] == 1
    # a rerun reads the cache: nothing trained, nothing placed
    calls2, placed2 = [], []
    again = train_population(_pop(7, calls2), FarmSettings(), cache, placed2)
    assert calls2 == []
    assert placed2 == []
    assert all(torch.equal(a["w"], b["w"]) for a, b in zip(out, again, strict=True))
    # a lost entry: only it is trained again (grouped by farm.group_size)
    for i in (2, 5):
        (cache.path({"model": i}) / FIELDS).unlink()
    calls3 = []
    train_population(_pop(7, calls3), FarmSettings(group_size=1), cache, [])
    assert calls3 == [[2], [5]]


def test_without_a_cache_every_model_trains_and_first_offsets_the_names(tmp_path) -> None:
    calls, placed = [], []
    pop = Population("toy", [None] * 4, _square, {"calls": calls}, chunk=4, first=10)
    out = train_population(pop, FarmSettings(group_size=2), None, placed)
    assert len(out) == 4
    assert calls == [[0, 1], [2, 3]]
    assert [p.model for p in placed] == [10, 11, 12, 13]


def test_groups_and_even_size() -> None:
    assert groups_of([4, 5, 6, 7, 8], 2) == [[4, 5], [6, 7], [8]]
    assert even_size(16, 2, 32) == 8
    assert even_size(16, 3, 32) == 6
    assert even_size(16, 64, 32) == 1
    assert even_size(100, 1, 32) == 32  # capped by the farm's chunk


# --------------------------------------------------------------------------- the cache
FIELDS_A = {"what": "race", "seed": 1}


def _publish(root, value, start, out):
    """One racing writer (a forked process): wait for the start time, publish."""
    cache = ModelCache(root, "race")
    while time.time() < start:
        pass
    out.put((value, cache.publish(FIELDS_A, {"w": torch.full((2000,), float(value))})))


def test_racing_writers_exactly_one_wins(tmp_path) -> None:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start = time.time() + 1.0
    procs = [ctx.Process(target=_publish, args=(tmp_path, v, start, out)) for v in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    winners = [v for v, won in results if won]
    assert len(winners) == 1
    stored = ModelCache(tmp_path, "race").load(FIELDS_A)
    assert torch.equal(stored["w"], torch.full((2000,), float(winners[0])))
    visible = [d for d in (tmp_path / "race").iterdir() if not d.name.startswith(".")]
    assert len(visible) == 1  # one entry; the losers' folders are gone
    assert not [d for d in (tmp_path / "race").iterdir() if d.name.startswith(".") and d.is_dir()]


def _slow_writer(root):
    """Publish, but block forever inside the weights write (killed there by the test)."""
    cache = ModelCache(root, "race")
    real = torch.save

    def stuck(obj, f):
        f.write(b"PK\x03\x04 half a file")
        f.flush()
        Path(root, "writing").touch()
        time.sleep(600)
        real(obj, f)

    torch.save = stuck
    cache.publish(FIELDS_A, {"w": torch.ones(3)})


def test_a_writer_killed_midway_leaves_no_readable_entry(tmp_path) -> None:
    proc = mp.get_context("fork").Process(target=_slow_writer, args=(tmp_path,))
    proc.start()
    t0 = time.monotonic()
    while not (tmp_path / "writing").exists():
        assert time.monotonic() - t0 < 120, "the writer never started"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    cache = ModelCache(tmp_path, "race")
    assert cache.load(FIELDS_A) is None  # no entry: the half file is in a hidden folder
    assert not cache.path(FIELDS_A).exists()
    assert cache.publish(FIELDS_A, {"w": torch.ones(3)})  # the next writer stores it
    assert torch.equal(cache.load(FIELDS_A)["w"], torch.ones(3))


def test_a_stale_entry_is_replaced_and_a_complete_one_kept(tmp_path) -> None:
    cache = ModelCache(tmp_path, "race")
    entry = cache.path(FIELDS_A)
    entry.mkdir()
    (entry / WEIGHTS).write_bytes(b"truncated")  # an older writer's leftover, no fields.json
    assert cache.publish(FIELDS_A, {"w": torch.zeros(2)})
    assert not cache.publish(FIELDS_A, {"w": torch.ones(2)})  # complete: kept as it is
    assert torch.equal(cache.load(FIELDS_A)["w"], torch.zeros(2))


# --------------------------------------------------------------------------- settings
def test_farm_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"farm.backend.*local, ray"):
        config.load("single", ["farm.backend=slurm"])
    for override, words in [
        ("farm.num_cpus=0", "farm.num_cpus must be > 0"),
        ("farm.num_gpus=-1", "farm.num_gpus must be >= 0"),
        ("farm.group_size=0", "farm.group_size must be >= 1 or null"),
        ("farm.threads=0", "farm.threads must be >= 1 or null"),
        ("farm.max_retries=-1", "farm.max_retries must be >= 0"),
        ("farm.address=not an address", "farm.address must be empty"),
    ]:
        with pytest.raises(ConfigError, match=words):
            config.load("single", [override])
    ok = config.load("single", ["farm.backend=ray", "farm.num_cpus=0.5", "farm.num_gpus=1"])
    assert OmegaConf.select(ok, "farm.address") == ""


def test_unreachable_address_is_one_config_error() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(ConfigError, match=rf"farm.address='127.0.0.1:{port}': no Ray cluster"):
        probe(f"127.0.0.1:{port}")
    with socket.socket() as silent:  # accepts connections, never answers: not a Ray head
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ConfigError, match=r"no Ray cluster answers there \(timed out"):
            probe(address, timeout=0.5)


def test_cli_exits_2_with_one_line_for_an_unreachable_cluster(tmp_path) -> None:
    """`lit-mia run ... farm.backend=ray farm.address=<nothing there>` fails in config
    validation: exit 2, one line on stderr, nothing trained (the probe waits at most
    PROBE_TIMEOUT_S; the limit here only bounds a hang)."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "lit_mia.cli", "run", "single", "farm.backend=ray",
         f"farm.address=127.0.0.1:{port}", f"tracking.uri=sqlite:///{tmp_path}/m.db"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    seconds = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"farm.address='127.0.0.1:{port}'" in lines[0]
    assert "no Ray cluster" in lines[0]
    assert not (tmp_path / "m.db").exists()  # stopped before any run was opened
    print(f"exit 2 after {seconds:.1f} s")


def test_placements_are_logged_through_tracking(tmp_path) -> None:
    from lit_mia import tracking
    from tests.conftest import client_for, store_uri

    cache = ModelCache(tmp_path / "c", "toy")
    placed = []
    train_population(_pop(3, []), FarmSettings(), cache, placed)
    with tracking.Run(store_uri(tmp_path), "t", "r") as run:
        tracking.log_placements(run, placement_rows(placed))
        rid = run.run_id
    client = client_for(tmp_path)
    path = client.download_artifacts(rid, tracking.PLACEMENTS_ARTIFACT, str(tmp_path))
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding=None)
    assert list(table["model"]) == [0, 1, 2]
    assert client.get_run(rid).data.tags[tracking.NODES_TAG].endswith("=3")
