"""The ray farm backend vs the local one, side by side in one process (`make bench`).

16 LiRA-style reference models (the `mlp` of the LiRA experiment, width 0.5; `--members`
mnist5k samples each, `--epochs` epochs, batch 128, the vmap path) trained through the farm
seam (lit_mia/models/backends.py) three ways, per round:

- local: `farm.backend=local`, one torch thread, the 16 models in one group;
- ray x1: `farm.backend=ray`, one group of 16 in one one-CPU task (one worker at a time);
- ray x2: two groups of 8 in two one-CPU tasks, on a local Ray started with `--workers` (2)
  CPUs: two workers in parallel.

Rows: speed-up = local seconds / ray x2 seconds (goal >= 1.6 on a machine with 2 free cores)
and overhead = ray x1 seconds / local seconds (goal <= 1.15): Ray's scheduling, shipping the
data set once per farm through the object store, and the results back. Timed: the whole
`train_population` call (no cache: every round trains). Fairness: one warm-up round (Ray
starts its worker processes there), then the three variants round-robin, the median of the
per-round ratios. A machine shared with other work depresses the speed-up: the load average
is printed with the ratios. Output: a table on stdout and JSON in bench/results/bench_ray.json.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_farm import sets_for
from bench_training import env_info, interleaved, median_ratio, report

from lit_mia.data.datasets import load_dataset
from lit_mia.models.backends import Population, train_population
from lit_mia.models.farm_settings import FarmSettings
from lit_mia.models.reference_models import train_references
from lit_mia.models.shadow_farm import TrainSpec
from lit_mia.nets import build_net

RESULTS = Path(__file__).resolve().parent / "results" / "bench_ray.json"
N_MODELS = 16
SPEEDUP_GOAL = 1.6
OVERHEAD_GOAL = 1.15


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="interleaved repetitions (median)")
    p.add_argument("--members", type=int, default=1000, help="training samples per model")
    p.add_argument("--epochs", type=int, default=4, help="epochs per model")
    p.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray")
    p.add_argument("--threads", type=int, default=1, help="torch threads (every variant)")
    p.add_argument("--quick", action="store_true", help="3 repeats, 512 members: a smoke run")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    a = p.parse_args(argv)
    if a.quick:
        a.repeats, a.members = min(a.repeats, 3), min(a.members, 512)
    return a


def population(bundle, members: int, epochs: int) -> Population:
    sets = sets_for(len(bundle), N_MODELS, members)
    make_net = functools.partial(build_net, "mlp", bundle.shape, bundle.n_classes, bundle.mean,
                                 bundle.std, width=0.5)  # fmt: skip
    shared = {
        "sets": sets, "seeds": list(range(N_MODELS)), "epochs": epochs,
        "spec": TrainSpec(batch_size=128, epochs=epochs), "accelerator": "cpu", "farm": "vmap",
        "choices": {}, "make_net": make_net, "x": bundle.x, "y": bundle.y, "fit": None,
    }  # fmt: skip
    return Population("reference model", [None] * N_MODELS, train_references, shared)


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    import ray

    torch.set_num_threads(a.threads)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    bundle = load_dataset("mnist5k")
    pop = population(bundle, a.members, a.epochs)
    load_before = os.getloadavg()
    ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")  # fmt: skip
    settings = {
        "local": FarmSettings(threads=a.threads, group_size=N_MODELS),
        "ray x1": FarmSettings(backend="ray", threads=a.threads, group_size=N_MODELS),
        "ray x2": FarmSettings(backend="ray", threads=a.threads, group_size=N_MODELS // 2),
    }
    states: dict[str, list] = {}

    def timed(name: str) -> float:
        t0 = time.perf_counter()
        states[name] = train_population(pop, settings[name], None, [])
        return time.perf_counter() - t0

    try:
        t = interleaved({n: functools.partial(timed, n) for n in settings}, a.repeats, warmup=1)
    finally:
        ray.shutdown()
    load_after = os.getloadavg()
    same = all(
        torch.equal(states["local"][i][k], states["ray x1"][i][k]) for i in range(N_MODELS)
        for k in states["local"][i]
    )  # fmt: skip
    speedup = median_ratio(t["local"], t["ray x2"])
    overhead = median_ratio(t["ray x1"], t["local"])
    rows = [
        {"label": "speed-up: local / ray x2 (2 one-CPU workers)", "ratio": speedup,
         "goal": f">= {SPEEDUP_GOAL}", "pass": speedup >= SPEEDUP_GOAL},
        {"label": "overhead: ray x1 / local", "ratio": overhead,
         "goal": f"<= {OVERHEAD_GOAL}", "pass": overhead <= OVERHEAD_GOAL},
    ]  # fmt: skip
    result = {
        "config": {
            "models": N_MODELS, "members": a.members, "epochs": a.epochs, "net": "mlp x0.5",
            "workers": a.workers, "threads": a.threads, "repeats": a.repeats, "quick": a.quick,
            "cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after,
            "local_s": statistics.median(t["local"]), "ray1_s": statistics.median(t["ray x1"]),
            "ray2_s": statistics.median(t["ray x2"]), "ray_x1_bit_identical": same,
            "env": env_info(),
        },
        "rows": rows,
    }  # fmt: skip
    return report(result, a.out, print_table=_print_table)


def _print_table(rows: list[dict], cfg: dict) -> None:
    print(
        f"{cfg['models']} {cfg['net']} references, {cfg['members']} members, {cfg['epochs']} "
        f"epochs, {cfg['threads']} torch thread(s), median of {cfg['repeats']} rounds; "
        f"{cfg['cpus']} CPUs, load average {cfg['load_before'][0]:.2f} before, "
        f"{cfg['load_after'][0]:.2f} after"
    )
    print(f"seconds: local {cfg['local_s']:.2f}, ray x1 {cfg['ray1_s']:.2f}, "
          f"ray x2 {cfg['ray2_s']:.2f}; ray x1 bit-identical to local: "
          f"{cfg['ray_x1_bit_identical']}")  # fmt: skip
    for r in rows:
        status = "ok" if r["pass"] else "MISSED"
        print(f"  {r['label']:<48} {r['ratio']:6.2f}  goal {r['goal']:<7} {status}")


if __name__ == "__main__":
    main()
