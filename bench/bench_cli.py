"""CLI start-up, measured side by side (`make bench`): how fast bad input and the light
commands come back, against `python -c "import torch"` alone (issue 22: a typo must come back
faster than importing torch).

Each row runs a fresh process (the installed `lit-mia` console script or the interpreter) and
times it to exit. Rounds are interleaved (torch, typo, list, config, help, torch, ...); a row is
the median over rounds of the per-round ratio command / `import torch`. Goal: < 1 for every
row (the light path imports neither torch, Lightning, MLflow nor Optuna:
tests/test_architecture.py asserts that; this script measures what it buys). Context rows:
`import torch` itself and a `lit-mia run --help` (argparse only). JSON in
bench/results/bench_cli.json.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import _row, env_info, report

RESULTS = Path(__file__).resolve().parent / "results" / "bench_cli.json"
LIT_MIA = [sys.executable, "-m", "lit_mia.cli"]
COMMANDS = {
    "typo in a key (run default data.n_membrs=3, exit 2)": ["run", "default", "data.n_membrs=3"],
    "unknown attack (run default attacks=[nope], exit 2)": ["run", "default", "attacks=[nope]"],
    "bad value (run default target.lr=-1, exit 2)": ["run", "default", "target.lr=-1"],
    "sweep typo (sweep eps data.n_membrs=3, exit 2)": ["sweep", "eps", "data.n_membrs=3"],
    "lit-mia list": ["list"],
    "lit-mia config default": ["config", "default"],
    "lit-mia --help": ["--help"],
}


def _time(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=False)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median)")
    p.add_argument("--quick", action="store_true", help="3 rounds")
    p.add_argument("--threads", type=int, default=None, help="(unused; common bench flag)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    torch_cmd = [sys.executable, "-c", "import torch"]
    _time(torch_cmd)  # warm the file cache
    for cmd in COMMANDS.values():
        _time([*LIT_MIA, *cmd])
    base: list[float] = []
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(repeats):
        base.append(_time(torch_cmd))
        for name, cmd in COMMANDS.items():
            times[name].append(_time([*LIT_MIA, *cmd]))
    rows = [_row("context: python -c 'import torch' (s)", statistics.median(base), None)]
    for name, ts in times.items():
        ratio = statistics.median(t / b for t, b in zip(ts, base))
        rows.append(_row(f"{name} / import torch", ratio, 1.0, seconds=statistics.median(ts)))
    result = {"config": {"repeats": repeats, **env_info()}, "rows": rows}
    return report(result, args.out, _print)


def _print(rows: list[dict], cfg: dict) -> None:
    print(f"CLI start-up, fresh processes, median of {cfg['repeats']} interleaved rounds")
    w = max(len(r["label"]) for r in rows)
    for r in rows:
        goal = "-" if r["goal"] is None else f"< {r['goal']:.2f}"
        res = "-" if r["pass"] is None else ("pass" if r["ratio"] < r["goal"] else "FAIL")
        print(f"{r['label']:<{w}}  {r['ratio']:7.3f}  {goal:>6}  {res}")


if __name__ == "__main__":
    main()
