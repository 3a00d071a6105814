"""RMIA scoring speed and reference-model memory (`make bench`, issue 13).

1. RMIA scoring time per 1,000 candidates at 16 references (lit_mia/attacks/rmia.py: p(x) from
   the references, then the fraction of 1,000 population points z with LR(x, z) >= gamma by
   sorted search), side by side with the direct pairwise definition (an [n, P] comparison
   matrix, what a literal implementation computes). Ratio = pairwise seconds / RMIA seconds
   (higher is better); both give the same scores (checked). Synthetic probabilities: scoring
   does not depend on where they come from.
2. Peak RSS of a whole `rmia` run (natural MLP target of conf/experiment/rmia.yaml, 1 epoch for
   the target and every reference model, fresh cache) with 16 vs 64 reference models, each in
   its own process (`ru_maxrss`). The farm streams every model's logits to a memory-mapped
   array and trains at most 32 models at once (models/reference_models.py). Goal: 64
   references use less than 10% more peak memory than 16.

Output: a table on stdout and JSON in bench/results/bench_rmia.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import env_info

from lit_mia.attacks.rmia import prior_prob, rmia_scores

RESULTS = Path(__file__).resolve().parent / "results" / "bench_rmia.json"
RSS_GOAL = 1.10

CHILD = """
import resource, sys, torch
from lit_mia.run import run_experiment
if sys.argv[1] != "0":
    torch.set_num_threads(int(sys.argv[1]))
run_experiment("rmia", sys.argv[2:])
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="interleaved repetitions (median)")
    p.add_argument("--refs", type=int, nargs=2, default=[16, 64], help="reference counts")
    p.add_argument("--threads", type=int, default=None, help="torch threads in the runs")
    p.add_argument("--quick", action="store_true", help="3 repeats; RSS at 16 / 32 refs")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    a = p.parse_args(argv)
    if a.quick:
        a.repeats, a.refs = min(a.repeats, 3), [16, 32]
    return a


def pairwise(p_x, prior_x, p_z, prior_z, gamma):
    """The definition, literally: [n, P] likelihood ratios, fraction >= gamma."""
    lr = (p_x / prior_x)[:, None, :] / (p_z / prior_z)[None, :, :]
    return (lr >= gamma).mean(1).mean(1)


def scoring(repeats: int) -> dict:
    rng = np.random.default_rng(0)
    n, pop, refs = 1000, 1000, 16
    p_x, p_z = rng.random((n, 1)), rng.random((pop, 1))
    ref_x, ref_z = rng.random((refs, n, 1)), rng.random((refs, pop, 1))
    fast, slow = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        s1 = rmia_scores(
            p_x, prior_prob(ref_x, None, "online", 1.0), p_z,
            prior_prob(ref_z, None, "online", 1.0), 1.0,
        )  # fmt: skip
        t1 = time.perf_counter()
        s2 = pairwise(p_x, ref_x.mean(0), p_z, ref_z.mean(0), 1.0)
        t2 = time.perf_counter()
        fast.append(t1 - t0)
        slow.append(t2 - t1)
    assert np.allclose(s1, s2), "sorted search and pairwise definition disagree"
    return {
        "rmia_ms_per_1000": 1000 * statistics.median(fast) * 1000 / n,
        "pairwise_ms_per_1000": 1000 * statistics.median(slow) * 1000 / n,
        "ratio": statistics.median(b / a for a, b in zip(fast, slow, strict=True)),
        "references": refs,
        "population": pop,
    }


def peak_rss(refs: int, tmp: Path, threads: int | None) -> float:
    args = [
        "targets=[natural]",
        "attacks=[rmia]",
        f"attack.rmia.n_references={refs}",
        "attack.lira.epochs=1",
        "trainer.max_epochs=1",
        "attack.bootstrap=0",
        "attack.slicing=[]",
        f"attack.lira.cache_dir={tmp}/cache_{refs}",
        f"tracking.uri=sqlite:///{tmp}/mlflow.db",
    ]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads or 0), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kb = [line.split()[1] for line in out.splitlines() if line.startswith("MAXRSS_KB")]
    return float(kb[-1]) / 1024.0


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    sc = scoring(a.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        rss = {r: peak_rss(r, Path(tmp), a.threads) for r in a.refs}
    lo, hi = a.refs
    ratio = rss[hi] / rss[lo]
    result = {
        "env": env_info(),
        "scoring": sc,
        "peak_rss_mb": {str(k): v for k, v in rss.items()},
        "rss_ratio": ratio,
        "rss_goal": RSS_GOAL,
        "rss_goal_met": ratio < RSS_GOAL,
    }
    print(f"RMIA scoring, {sc['references']} references, population {sc['population']}:")
    print(f"  sorted search  {sc['rmia_ms_per_1000']:8.2f} ms / 1,000 candidates")
    print(f"  pairwise       {sc['pairwise_ms_per_1000']:8.2f} ms / 1,000 candidates")
    print(f"  ratio          {sc['ratio']:8.1f}x")
    print(f"peak RSS of an rmia run: {lo} refs {rss[lo]:.0f} MB, {hi} refs {rss[hi]:.0f} MB")
    met = "met" if ratio < RSS_GOAL else "NOT met"
    print(f"  ratio {ratio:.3f} (goal < {RSS_GOAL}: {met})")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {a.out}")
    return result


if __name__ == "__main__":
    main()
