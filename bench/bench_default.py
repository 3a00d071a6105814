"""Where `make run`'s time goes: the embedded default experiment, phase by phase (issue 27).

Runs `lit-mia run default` in this process (`run_experiment`, a throwaway MLflow store under
a temporary folder, output piped through a recorder) and times every phase with both clocks:

- wall: `time.perf_counter`;
- CPU: user + system time of this process, all its threads (`resource.getrusage`).

Phases: each fit (`fit <target> target`, `fit <target> shadow (seed s)`: the calibration
shadow), the PGD accuracy of each target, each attack, and the rest (start-up, data, MLflow,
plots, checkpoints). The same table gives the headline numbers the default exists to show
(PGD target vs natural by I_B / I_A, calibrated accuracy with its interval, against the
0.5 chance baseline), so a faster default can be checked for still saying the same thing.

The machine may be shared, so the wall clock alone says little. The idle 2-core figure: with
`--threads 1` the CPU time is the work one core does, and an idle 2-core machine running torch's
2 threads takes no longer than that (2 threads beat 1 on idle cores: ~1.8x on a PGD epoch of
this LeNet), so `idle 2-core bound` is the 1-thread CPU total, goal <= 300 s. (On a busy
machine 2 threads can be several times slower than 1: OpenMP threads wait for each other.)
What CPU time misses is waiting on the disk (MLflow's SQLite writes), small next to training.
The longest silence between two output lines checks the piped progress: goal <= 30 s
(lit_mia.progress.PIPED_EVERY_S) plus one batch.

    .venv/bin/python bench/bench_default.py --threads 1          # the figure in the README
    .venv/bin/python bench/bench_default.py --quick               # smoke run, tiny sizes
    .venv/bin/python bench/bench_default.py --set trainer.max_epochs=20

JSON in bench/results/bench_default.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import env_info

RESULTS = Path(__file__).resolve().parent / "results" / "bench_default.json"
IDLE_GOAL_S = 300.0  # issue 27: make run <= 5 min on an idle 2-core machine
QUICK = [  # smoke sizes (tests/conftest.py's tiny run): seconds, not minutes
    "data.n_members=64",
    "data.n_nonmembers=64",
    "data.n_validation=32",
    "data.n_shadow=128",
    "trainer.max_epochs=2",
    "attack.bootstrap=20",
]


def cpu_s() -> float:
    """User + system CPU seconds of this process, every thread."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Phases:
    """(label, wall s, CPU s) of each timed phase, in order."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    @contextlib.contextmanager
    def timed(self, label: str):
        w, c = time.perf_counter(), cpu_s()
        try:
            yield
        finally:
            self.rows.append(
                {"phase": label, "wall_s": time.perf_counter() - w, "cpu_s": cpu_s() - c}
            )


class LineClock(io.TextIOBase):
    """A piped stdout that forwards everything and notes when each line ends."""

    def __init__(self, real) -> None:
        self.real, self.buf = real, ""
        self.lines: list[tuple[float, str]] = [(time.perf_counter(), "(start)")]

    def write(self, s: str) -> int:
        self.real.write(s)
        *done, self.buf = (self.buf + s).split("\n")
        self.lines.extend((time.perf_counter(), line) for line in done)
        return len(s)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return False

    def longest_gap(self, end: float) -> tuple[float, str]:
        """(seconds, the line that ended it) of the longest silence, the end included."""
        marks = [*self.lines, (end, "(end)")]
        return max((b[0] - a[0], b[1]) for a, b in itertools.pairwise(marks))


def instrument(phases: Phases) -> None:
    """Time every fit and every progress task (PGD accuracy, attacks) of the run."""
    from lit_mia import progress, training

    real_fit, real_task = training.fit_target, progress.task

    def fit_target(cfg, bundle, train_idx, val_idx, **kw):
        seed = kw.get("seed")
        role = "target" if seed is None or seed == cfg.seed else f"shadow (seed {seed})"
        with phases.timed(f"fit {training.label_of(cfg)} {role}"):
            return real_fit(cfg, bundle, train_idx, val_idx, **kw)

    @contextlib.contextmanager
    def task(label, stream=None):
        with phases.timed(label), real_task(label, stream) as t:
            yield t

    training.fit_target, progress.task = fit_target, task


HEADLINE = (
    "target/test_acc",
    "target/adv_test_acc",
    "attack/ib/acc_best",
    "attack/ib/auc",
    "attack/ib/acc_calibrated",
    "attack/ib/acc_calibrated_ci_low",
    "attack/ib/acc_calibrated_ci_high",
    "attack/ia/acc_best",
    "attack/ia/auc",
    "attack/ia/auc_ci_low",
    "attack/ia/auc_ci_high",
    "attack/ia/acc_calibrated",
    "attack/ia/acc_calibrated_ci_low",
    "attack/ia/acc_calibrated_ci_high",
)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    p.add_argument("--repeats", type=int, default=1, help="(one run; common bench flag)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    import torch

    from lit_mia.quiet import quiet_lightning
    from lit_mia.run import run_experiment

    quiet_lightning()  # the output of `lit-mia run`, not Lightning's banners
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    overrides = [*(QUICK if args.quick else []), *args.overrides]
    phases = Phases()
    instrument(phases)
    with tempfile.TemporaryDirectory() as tmp:
        store = [f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"tracking.artifact_root={tmp}/a"]
        clock = LineClock(sys.stdout)
        load0 = os.getloadavg()[0]
        w0, c0 = time.perf_counter(), cpu_s()
        with contextlib.redirect_stdout(clock):
            results = run_experiment("default", [*overrides, *store])
        wall, cpu = time.perf_counter() - w0, cpu_s() - c0
        silence, after_silence = clock.longest_gap(time.perf_counter())
    load1 = os.getloadavg()[0]
    rest = {
        "phase": "rest (start, data, MLflow, plots, checkpoints)",
        "wall_s": wall - sum(r["wall_s"] for r in phases.rows),
        "cpu_s": cpu - sum(r["cpu_s"] for r in phases.rows),
    }
    headline = {
        label: {k: float(r.metrics[k]) for k in HEADLINE if k in r.metrics}
        for label, r in results.items()
    }
    result = {
        "config": {
            "threads": threads,
            "overrides": overrides,
            "cpus": os.cpu_count(),
            "loadavg_1min_before_after": [load0, load1],
            **env_info(),
        },
        "phases": [*phases.rows, rest],
        "total": {"wall_s": wall, "cpu_s": cpu},
        "idle_2core_bound_s": cpu if threads == 1 else None,
        "longest_silence_s": silence,
        "longest_silence_ended_by": after_silence,
        "headline": headline,
    }
    _print(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return result


def _print(result: dict) -> None:
    """The phase table, the idle estimate and the headline numbers."""
    cfg = result["config"]
    load = ", ".join(f"{v:.1f}" for v in cfg["loadavg_1min_before_after"])
    extra = f", overrides {' '.join(cfg['overrides'])}" if cfg["overrides"] else ""
    print(f"\nlit-mia run default: {cfg['threads']} torch threads, load {load}{extra}")
    w = max(len(r["phase"]) for r in result["phases"])
    print(f"{'phase':<{w}}  {'wall s':>8}  {'CPU s':>8}")
    for r in result["phases"]:
        print(f"{r['phase']:<{w}}  {r['wall_s']:8.1f}  {r['cpu_s']:8.1f}")
    t = result["total"]
    print(f"{'total':<{w}}  {t['wall_s']:8.1f}  {t['cpu_s']:8.1f}")
    if result["idle_2core_bound_s"] is not None:
        bound = result["idle_2core_bound_s"]
        ok = "pass" if bound <= IDLE_GOAL_S else "FAIL"
        print(f"idle 2-core bound (1-thread CPU total): {bound:.0f} s  goal <= 300 s  {ok}")
    silence, by = result["longest_silence_s"], result["longest_silence_ended_by"]
    ok = "pass" if silence <= 31 else "FAIL"
    print(f"longest silence between output lines: {silence:.1f} s  goal <= 30 s  {ok} ({by!r})")
    for label, m in result["headline"].items():
        print(f"{label}: " + "  ".join(f"{k.split('/', 1)[1]} {v:.3f}" for k, v in m.items()))


if __name__ == "__main__":
    main()
