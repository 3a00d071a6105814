"""Distributed-sweep speed, measured side by side (`make bench`).

1. Trials per hour of one sweep worker vs two (`lit-mia sweep eps --workers N`: N worker
   processes on one SQLite study), on tiny trials (the fast suite's: 64 members, lenet_mnist
   width 0.5, 1 epoch, I_A with 5 PGD steps). Both counts start their workers as processes, so
   both pay the same imports. Two rates: wall clock of the whole command (what a user waits)
   and steady state (trials / span from the first trial's start to the last one's end).
   Ratio = 2-worker rate / 1-worker rate; on 2 cores the ideal is 2.
2. Storage overhead per trial: a trial's storage round trips alone (ask, two suggests,
   heartbeats on, tell) with a no-op objective, PostgreSQL (a throwaway local server) vs
   SQLite. Ratio = PostgreSQL ms / SQLite ms.

Rounds interleaved (1 worker, 2 workers, 1 worker, ...); medians. Absolute times depend on the
machine and its load; ratios are the numbers to read. JSON in bench/results/bench_sweep.json.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import env_info, report

from lit_mia.sweep import pgserver
from lit_mia.sweep.study import Sweep, launch_workers

RESULTS = Path(__file__).resolve().parent / "results" / "bench_sweep.json"
TINY = [
    "data.n_members=64",
    "data.n_nonmembers=64",
    "data.n_validation=32",
    "data.n_shadow=128",
    "data.batch_size=32",
    "net.name=lenet_mnist",
    "net.width=0.5",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.val_adv_steps=2",
    "attack.steps=5",
    "attacks=[ia]",
    "attack.calibrate=false",
    "sweep.sampler=random",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=2, help="interleaved rounds (median)")
    p.add_argument("--trials", type=int, default=8, help="tiny trials per sweep")
    p.add_argument("--storage-trials", type=int, default=60, help="no-op trials per storage")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker")
    p.add_argument("--quick", action="store_true", help="1 round, 4 trials: a smoke run")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    a = p.parse_args(argv)
    if a.quick:
        a.repeats, a.trials, a.storage_trials = 1, 4, 30
    return a


def sweep_rates(
    workers: int, n_trials: int, root: Path, threads: int | None
) -> tuple[float, float]:
    """(wall-clock trials/hour, steady-state trials/hour) of one fresh sweep."""
    d = root / uuid.uuid4().hex[:8]
    args = [*TINY, f"tracking.uri=sqlite:///{d}/mlflow.db", f"sweep.n_trials={n_trials}"]
    t0 = time.perf_counter()
    sw = Sweep("eps", args, workers)
    with sw.parent_run() as parent:
        sw.log_spec(parent)
        codes = launch_workers(sw, parent.run_id, workers, threads)
    wall = time.perf_counter() - t0
    if any(codes):
        raise RuntimeError(f"workers failed: {codes}")
    done = [t for t in sw.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    span = (
        max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    ).total_seconds()
    return 3600 * len(done) / wall, 3600 * len(done) / span


def storage_ms(url: str, n: int) -> float:
    """Milliseconds per no-op trial on `url` with heartbeats on (median of 3 batches)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=90)
        study = optuna.create_study(study_name=uuid.uuid4().hex, storage=storage)
        objective = lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("k", 0, 9)  # noqa: E731
        study.optimize(objective, n_trials=3)  # warm-up: tables, connections
        per = []
        for _ in range(3):
            t0 = time.perf_counter()
            study.optimize(objective, n_trials=n // 3)
            per.append(1e3 * (time.perf_counter() - t0) / (n // 3))
    return statistics.median(per)


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    rates: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for _ in range(a.repeats):
        for w in (1, 2):
            rates[w].append(sweep_rates(w, a.trials, root, a.threads))
    pg_dir = tempfile.mkdtemp(prefix="lit_mia_pg_")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        pg_url = pgserver.start(pg_dir, port)
        sqlite_url = f"sqlite:///{root}/storage_bench.db"
        ms = {"sqlite": [], "postgresql": []}
        for _ in range(a.repeats):
            ms["sqlite"].append(storage_ms(sqlite_url, a.storage_trials))
            ms["postgresql"].append(storage_ms(pg_url, a.storage_trials))
    finally:
        pgserver.stop(pg_dir)
        shutil.rmtree(pg_dir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    med = {w: [statistics.median(r[i] for r in rates[w]) for i in (0, 1)] for w in rates}
    sq, pg = statistics.median(ms["sqlite"]), statistics.median(ms["postgresql"])
    rows = [
        {"measurement": "trials/hour, wall clock: 2 workers / 1", "ratio": med[2][0] / med[1][0],
         "a": med[2][0], "b": med[1][0], "unit": "trials/h"},
        {"measurement": "trials/hour, steady state: 2 workers / 1",
         "ratio": med[2][1] / med[1][1], "a": med[2][1], "b": med[1][1], "unit": "trials/h"},
        {"measurement": "storage ms/trial: PostgreSQL / SQLite", "ratio": pg / sq, "a": pg,
         "b": sq, "unit": "ms"},
    ]  # fmt: skip
    cfg = {"repeats": a.repeats, "trials": a.trials, "storage_trials": a.storage_trials}
    cfg["threads"] = a.threads
    return report({"config": cfg, "env": env_info(), "rows": rows}, a.out, _print_table)


def _print_table(rows: list[dict], cfg: dict) -> None:
    print(
        f"tiny eps trials x {cfg['trials']}, {cfg['storage_trials']} no-op storage trials, "
        f"median of {cfg['repeats']} interleaved rounds"
    )
    w = max(len(r["measurement"]) for r in rows)
    print(f"{'measurement':<{w}}  {'ratio':>6}  values")
    for r in rows:
        print(
            f"{r['measurement']:<{w}}  {r['ratio']:6.2f}  {r['a']:.1f} vs {r['b']:.1f} {r['unit']}"
        )


if __name__ == "__main__":
    main()
