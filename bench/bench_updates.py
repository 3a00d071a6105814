"""Updated models per second of the Updates-Leak farm (`make bench`), side by side in one process.

LeNet (`lenet_mnist`, appendix A of Salem et al. USENIX Security'20) on mnist5k, 100 probes,
update sets of k = 1 (single-sample: one SGD step, per-sample gradients by vmap(grad)) and
k = 10 (one step on 10 samples), SGD lr 1e-3, momentum 0.9 (the released code):

- naive: per model deepcopy + torch.optim.SGD + one epoch of steps + probe forward
  (farm.naive_deltas; the issue measured about 113 models/s on this CPU);
- fast (loop): farm.update_deltas, probe_mode "loop" (the default);
- fast (vmap): farm.update_deltas, probe_mode "vmap";
- fast (delta, float64 rows only): probe_mode "delta" (models/delta_forward.py: the
  base forward once in float64, each model's activation differences in float32 convs).
Each for `--dtypes`: float32 posterior differences (the farm before issue 11) and float64
log-posterior differences (the farm's default since issue 11: the update and the probe forward
in float64, gradients in float32; the naive loop then runs its model copy in float64).
Goal: fast >= 3x naive. Each variant is also reported as a fraction of the compute limit:
FLOPs per updated model (probe forward + the update's forward/backward, counted with
torch.utils.flop_counter) against the GFLOP/s of a large matmul of the same dtype measured in
the same process (the issue's estimate: ~83 MFLOP per model at ~40 GFLOP/s, ~480 models/s).

Fairness: same net, probes and update sets for all variants, warm-up first, rounds interleaved,
medians of per-round ratios (bench_training.interleaved / median_ratio). Output: a table and
bench/results/bench_updates.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import env_info, interleaved, median_ratio, report

from lit_mia.data.datasets import load_dataset
from lit_mia.models.update_deltas import UpdateRule, naive_deltas, update_deltas
from lit_mia.nets import build_net

RESULTS = Path(__file__).resolve().parent / "results" / "bench_updates.json"
GOAL = 3.0


def flops_per_model(net, probe, x, y) -> int:
    """Probe forward + the update's forward and backward (one model), counted by torch."""
    with FlopCounterMode(display=False) as fc:
        with torch.no_grad():
            net(probe)
        F.cross_entropy(net(x), y).backward()
    net.zero_grad()
    return int(fc.get_total_flops())


def matmul_gflops(n: int = 1024, reps: int = 10, dtype=torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=256, help="updated models per timing")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--k", type=int, nargs="+", default=[1, 10])
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="64 models, 2 repeats: a smoke run")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if a.quick:
        a.models, a.repeats = min(a.models, 64), min(a.repeats, 2)
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    bundle = load_dataset("mnist5k")
    torch.manual_seed(0)
    net = build_net("lenet_mnist", bundle.shape, 10, bundle.mean, bundle.std).eval()
    probe = bundle.x[4000:4100]
    rule = UpdateRule("sgd", 1e-3, 0.9, 64)
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    gf = {d: statistics.median(matmul_gflops(dtype=dtypes[d]) for _ in range(3)) for d in a.dtypes}
    rows = []
    for k, dname in ((k, d) for d in a.dtypes for k in a.k):
        dtype, log, gflops = dtypes[dname], dname == "float64", gf[dname]
        m = a.models
        g = torch.Generator().manual_seed(k)
        idx = torch.randint(0, 4000, (m, k), generator=g)
        xs, ys = bundle.x[idx], bundle.y[idx]
        flops = flops_per_model(net, probe, xs[0], ys[0])
        limit = gflops * 1e9 / flops

        def timed(fn):
            def run() -> float:
                t0 = time.perf_counter()
                fn()
                return time.perf_counter() - t0

            return run

        def fast(mode, xs=xs, ys=ys, dtype=dtype, log=log):
            return lambda: update_deltas(net, probe, xs, ys, rule, a.chunk, mode, dtype, log)

        fns = {
            "naive": timed(
                lambda xs=xs, ys=ys, dt=dtype, lg=log: naive_deltas(
                    net, probe, xs, ys, rule, dt, lg
                )
            ),
            "loop": timed(fast("loop")),
            "vmap": timed(fast("vmap")),
        }
        if dname == "float64":  # float32 differences with float64-grade results
            fns["delta"] = timed(fast("delta"))
        t = interleaved(fns, a.repeats, warmup=1)
        for name in fns:
            rate = m / statistics.median(t[name])
            speedup = median_ratio(t["naive"], t[name])
            goal = None if name == "naive" else GOAL
            rows.append(
                {
                    "measurement": f"{dname} k={k} {name}",
                    "models_per_s": rate,
                    "speedup_vs_naive": speedup,
                    "fraction_of_limit": rate / limit,
                    "limit_models_per_s": limit,
                    "mflop_per_model": flops / 1e6,
                    "goal": goal,
                    "pass": None if goal is None else bool(speedup >= goal),
                }
            )
    result = {
        "config": {
            "net": "lenet_mnist",
            "data": "mnist5k",
            "n_probe": 100,
            "models": a.models,
            "repeats": a.repeats,
            "chunk": a.chunk,
            "k": a.k,
            "threads": torch.get_num_threads(),
            "matmul_gflops": gf,
        },
        "env": env_info(),
        "rows": rows,
    }
    return report(result, a.out, _print_table)


def _print_table(rows: list[dict], cfg: dict) -> None:
    print(
        f"lenet_mnist / mnist5k, 100 probes, {cfg['models']} models per timing, "
        f"{cfg['threads']} torch threads, matmul GFLOP/s "
        + ", ".join(f"{d} {v:.1f}" for d, v in cfg["matmul_gflops"].items())
        + ", "
        f"median of {cfg['repeats']} interleaved rounds"
    )
    print(f"{'variant':<20} {'models/s':>9} {'vs naive':>9} {'of limit':>9} {'limit/s':>8}  goal")
    for r in rows:
        goal = (
            "-"
            if r["goal"] is None
            else f">= {r['goal']:.0f}x " + ("pass" if r["pass"] else "FAIL")
        )
        print(
            f"{r['measurement']:<20} {r['models_per_s']:9.1f} {r['speedup_vs_naive']:8.2f}x "
            f"{r['fraction_of_limit']:8.1%} {r['limit_models_per_s']:8.0f}  {goal}"
        )


if __name__ == "__main__":
    main()
