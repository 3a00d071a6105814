"""The ray backend of the farm seam on a real two-node Ray cluster started here
(tests/helpers/ray_cluster.py: `ray start --head --num-cpus=1` and a worker node with one
CPU): the same models as the local backend bit for bit, one progress line and one placement
per model, reruns read the cache; a worker node killed with SIGKILL mid-farm (its tasks rerun
on the other nodes, every model stored once, no half-written entry); whole experiments
(calibration shadows, LiRA references, update-leakage base models) equal to the local run."""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import pytest
import torch

from lit_mia.data.datasets import load_dataset
from lit_mia.models.backends import Population, train_population
from lit_mia.models.cache import ModelCache
from lit_mia.models.farm_settings import FarmSettings
from lit_mia.models.reference_models import train_references
from lit_mia.models.shadow_farm import TrainSpec
from lit_mia.nets import build_net
from tests.helpers.ray_cluster import RayCluster, marked_train
from tests.helpers.runif import RunIf

pytestmark = [RunIf(ray=True), pytest.mark.xdist_group("ray_cluster")]
TIMING = ("seconds", "per_min", "wall_s", "per_s")


@pytest.fixture(scope="module")
def cluster():
    """Head (1 CPU) + one worker node (1 CPU); the test process is the driver."""
    import ray

    c = RayCluster()
    try:
        c.start_head()
        c.add_worker()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.stop()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def references(bundle, n: int, path: str, epochs: int = 3) -> tuple[list[dict], dict]:
    """(cache fields, shared inputs) of n reference models on digits through the real farm."""
    rng = np.random.default_rng(0)
    sets = [np.sort(rng.choice(len(bundle), 300, replace=False)) for _ in range(n)]
    make_net = functools.partial(build_net, "mlp", bundle.shape, bundle.n_classes, bundle.mean,
                                 bundle.std, width=0.25)  # fmt: skip
    shared = {
        "sets": sets, "seeds": [1000 + i for i in range(n)], "epochs": epochs,
        "spec": TrainSpec(batch_size=32, epochs=epochs), "accelerator": "cpu", "farm": path,
        "choices": {}, "make_net": make_net, "x": bundle.x, "y": bundle.y, "fit": None,
    }  # fmt: skip
    fields = [{"test": "ray backend", "path": path, "epochs": epochs, "i": i} for i in range(n)]
    return fields, shared


def farm(cluster, **kw) -> FarmSettings:
    return FarmSettings(backend="ray", address=cluster.address, threads=1, **kw)


def equal_states(a: list[dict], b: list[dict]) -> bool:
    return all(
        sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        for sa, sb in zip(a, b, strict=True)
    )


@pytest.mark.parametrize(("path", "local_groups"), [("vmap", 2), ("loop", None)])
def test_ray_equals_local_places_and_caches(
    cluster, digits, tmp_path, capsys, path, local_groups
) -> None:
    """Bit-identical to the local backend: the vmap path with the same groups (its batched
    kernels round by the group's size), the loop path with any grouping (each model alone)."""
    fields, shared = references(digits, 8, path)
    local = train_population(
        Population("reference model", fields, train_references, shared, chunk=32),
        FarmSettings(threads=1, group_size=local_groups), None, [],
    )  # fmt: skip
    cache = ModelCache(tmp_path / "cache", "refs")
    placed: list = []
    pop = Population("reference model", fields, train_references, shared, chunk=32)
    on_ray = train_population(pop, farm(cluster, group_size=2), cache, placed)
    assert equal_states(on_ray, local)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("reference")]
    assert len(lines) == 8  # one line per finished model
    assert sorted(p.model for p in placed) == list(range(8))
    assert len({p.node for p in placed}) == 2  # both nodes trained some
    assert {p.note for p in placed} == {path}
    assert len([d for d in (tmp_path / "cache" / "refs").iterdir()]) == 8
    again: list = []
    reread = train_population(pop, farm(cluster), cache, again)
    assert again == []
    assert equal_states(reread, local)


@pytest.mark.slow
def test_a_worker_node_killed_mid_farm(cluster, digits, tmp_path) -> None:
    """kill -9 of every process of one worker node while it trains a group: its groups rerun
    on the surviving nodes, the farm completes with the local backend's models, and the cache
    holds each model once, complete (no hidden writer folder left as an entry)."""
    import ray

    from lit_mia.models.ray_backend import connect

    connect(cluster.address)
    before = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    doomed = cluster.add_worker()
    (victim,) = {n["NodeID"] for n in ray.nodes() if n["Alive"]} - before
    fields, inner = references(digits, 6, "loop")
    marks = tmp_path / "marks"
    marks.mkdir()
    shared = {"inner": inner, "marks": str(marks), "sleep": 3.0}
    cache = ModelCache(tmp_path / "cache", "refs")
    pop = Population("reference model", fields, marked_train, shared)
    placed: list = []
    result: dict = {}

    def run() -> None:
        try:
            result["states"] = train_population(pop, farm(cluster, group_size=1), cache, placed)
        except BaseException as e:  # reported by the assertion below
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t0 = time.monotonic()
    while not any(m.name.split(".")[1] == victim for m in marks.iterdir()):
        assert t.is_alive(), f"the farm ended before the extra node started: {result}"
        assert time.monotonic() - t0 < 300, "no group ever started on the extra node"
        time.sleep(0.1)
    cluster.kill_node(doomed)  # mid-task: the group sleeps before it trains
    killed = {int(m.name.split(".")[0]) for m in marks.iterdir() if m.name.split(".")[1] == victim}
    t.join(timeout=600)
    assert "error" not in result, result.get("error")
    local = train_population(
        Population("reference model", fields, train_references, inner), FarmSettings(threads=1)
    )
    assert equal_states(result["states"], local)
    starts = [m.name.split(".") for m in marks.iterdir()]
    for i in killed:  # each model the dead node held was started again on another node
        assert any(int(s[0]) == i and s[1] != victim for s in starts), (i, starts)
    assert all(p.node != victim for p in placed if p.model in killed)
    entries = list((tmp_path / "cache" / "refs").iterdir())
    visible = [d for d in entries if not d.name.startswith(".")]
    assert len(visible) == 6  # one entry per model
    assert all(cache.load(f) is not None for f in fields)


@pytest.mark.slow
def test_experiment_on_ray_equals_local(cluster, tmp_path) -> None:
    """`lit-mia run` with calibration shadow models (I_B calibrated) and LiRA references on
    the cluster: every metric but wall times equals the local run's; the run records which
    node trained which model (farm/placements.csv, tag lit_mia.farm.nodes)."""
    from lit_mia import tracking
    from lit_mia.run import run_experiment
    from tests.conftest import all_runs, client_for, tiny

    base = ["attacks=[ib,lira]", "attack.lira.n_shadow=4", "attack.bootstrap=20",
            "attack.lira.farm=loop", "farm.threads=1"]  # fmt: skip

    def metrics(folder, *extra):
        res = run_experiment("single", tiny(folder, *base, f"attack.lira.cache_dir={folder}/c",
                                            *extra))  # fmt: skip
        return next(iter(res.values())).metrics

    on_ray = metrics(tmp_path / "ray", "farm.backend=ray", f"farm.address={cluster.address}")
    local = metrics(tmp_path / "local")
    keys = [k for k in local if not any(w in k for w in TIMING)]
    assert {k: on_ray[k] for k in keys} == {k: local[k] for k in keys}
    client = client_for(tmp_path / "ray")
    (run,) = all_runs(client)
    path = client.download_artifacts(run.info.run_id, tracking.PLACEMENTS_ARTIFACT, str(tmp_path))
    rows = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding=None)
    assert sorted(set(rows["population"])) == ["calibration shadow model", "reference model"]
    assert (rows["population"] == "reference model").sum() == 4
    assert run.data.tags[tracking.NODES_TAG]


@pytest.mark.slow
def test_update_base_models_on_ray_equal_local(cluster, tmp_path) -> None:
    from lit_mia import config
    from lit_mia.models.base_models import base_fields, base_fitter
    from lit_mia.models.update_farm import BaseModels
    from lit_mia.models.update_pools import make_pools
    from tests.models.test_update_farm import TINY

    cfg = config.load("updates_leak_multi", [*TINY, "updates.base_epochs=2",
                                              "trainer.enable_progress_bar=false"])  # fmt: skip
    bundle = load_dataset("digits")
    pools = make_pools(len(bundle), cfg.updates, int(cfg.seed))

    def bases(backend: FarmSettings, cache=None):
        b = BaseModels(base_fitter(cfg, bundle), pools, int(cfg.seed), cache,
                       base_fields(cfg, bundle), farm=backend)  # fmt: skip
        shadow, target = b.get(2)
        return [n.state_dict() for n in [*shadow, target]], b.placements

    local, _ = bases(FarmSettings(threads=1))
    cache = ModelCache(tmp_path, "updates_leak", key_name="updates.cache_dir")
    on_ray, placed = bases(farm(cluster), cache)
    assert equal_states(on_ray, local)
    assert [p.what for p in placed] == ["update base model"] * 3
