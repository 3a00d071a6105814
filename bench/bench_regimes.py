"""Training-step cost of the non-PGD regimes vs the natural step (`make bench`, second script).

One training step = `training_loss` + backward + Adam step on one batch of `--batch-size`
mnist5k images (the same fixed batch for every variant), measured side by side in one process:

1. IBP (`IBPTarget`, eps 0.1, schedule finished, kappa = kappa_end) / natural, LeNet. Goal <= 3.0.
2. DiffAI (`DiffAITarget`, box domain, eps 0.1) / natural, LeNet. Report only.
3. TRADES-k (`TradesTarget`, eps 0.1, k = 8, step 0.02, beta 1) / natural, LeNet.
   Goal <= 1.5 * (k + 1).
4. dist (`DistTarget`, Sinha et al., 8 ascent steps, step size 1) / natural, LeNet. Report only.
5. dual (`DualTarget`, eps 0.1, proj 20 and 50, norm_type l1_median) / natural on `mlp` width 1.
   Report only. LeNet is impossible: the dual bound cannot take max-pooling.

No Trainer is attached, so the verifiable schedules read as finished (full eps, kappa_end) and
no Lightning gradient clipping runs (dual's grad_clip is not applied here). Timing helpers come
from bench_training: warm-up, interleaved rounds, the median of per-round ratios.
Output: a table on stdout and JSON in bench/results/bench_regimes.json.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import (
    TrainStep,
    _med,
    _row,
    bench_cfg,
    env_info,
    interleaved,
    median_ratio,
    print_ratio_rows,
    report,
)

from lit_mia import config
from lit_mia.data.datasets import load_dataset
from lit_mia.targets import NaturalTarget
from lit_mia.targets.distributional import DistSettings, DistTarget
from lit_mia.targets.trades import TradesTarget
from lit_mia.targets.verifiable import DiffAITarget, DualTarget, IBPTarget
from lit_mia.training import make_net

RESULTS = Path(__file__).resolve().parent / "results" / "bench_regimes.json"
EPS = 0.1
IBP_GOAL = 3.0
TRADES_K, TRADES_STEP, TRADES_GOAL_FACTOR = 8, 0.02, 1.5
DIST_STEPS, DIST_STEP_SIZE = DistSettings.steps, DistSettings.dist_step_size  # 8, 1.0
DUAL_PROJ = (20, 50)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="interleaved repetitions (median)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=4, help="optimisation steps per step timing")
    p.add_argument("--quick", action="store_true", help="2 repeats, 2 steps: a smoke run")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    a = p.parse_args(argv)
    if a.quick:
        a.repeats, a.steps = 2, 2
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    lenet_cfg = bench_cfg(a.batch_size)
    mlp_cfg = config.load("default", ["data.name=mnist5k", "net.name=mlp", "net.width=1"])
    bundle = load_dataset("mnist5k")
    det = lenet_cfg.trainer.deterministic  # as bench_training: the Trainer's process-wide flag
    torch.use_deterministic_algorithms(bool(det), warn_only=det == "warn")
    take = torch.as_tensor(
        torch.randperm(len(bundle), generator=torch.Generator().manual_seed(0))[: a.batch_size]
    )
    batch = (bundle.x[take], bundle.y[take], take)

    def step(target_cls, cfg, **kw) -> TrainStep:
        """A TrainStep of `target_cls` with settings `target_cls.Settings(**kw)`."""
        torch.manual_seed(0)
        module = target_cls(make_net(cfg, bundle), target_cls.Settings(**kw))
        return TrainStep(module, batch, a.steps)

    ibp = step(IBPTarget, lenet_cfg, eps=EPS, kappa_start=1.0, kappa_end=0.5)
    assert ibp.module.schedule_at(0) == (EPS, 0.5), "IBP schedule not finished"
    fns: dict[str, Callable[[], float]] = {
        "natural": step(NaturalTarget, lenet_cfg),
        "ibp": ibp,
        "diffai": step(DiffAITarget, lenet_cfg, eps=EPS),
        "trades": step(
            TradesTarget, lenet_cfg, eps=EPS, steps=TRADES_K, step_size=TRADES_STEP, beta=1.0
        ),
        "dist": step(DistTarget, lenet_cfg, steps=DIST_STEPS, dist_step_size=DIST_STEP_SIZE),
        "natural_mlp": step(NaturalTarget, mlp_cfg),
    }
    for proj in DUAL_PROJ:
        fns[f"dual{proj}"] = step(DualTarget, mlp_cfg, eps=EPS, proj=proj, norm_type="l1_median")
    try:
        step(DualTarget, lenet_cfg, eps=EPS)
        dual_lenet = "dual on LeNet: accepted (unexpected)"
    except Exception as e:
        dual_lenet = f"dual on LeNet: impossible (max-pooling): {type(e).__name__}: {e}"

    t = interleaved(fns, a.repeats, warmup=1)
    nat, nat_mlp = t["natural"], t["natural_mlp"]
    k = TRADES_K
    rows = [
        _row("IBP step / natural step (LeNet)", median_ratio(t["ibp"], nat), IBP_GOAL),
        _row("DiffAI step / natural step (LeNet)", median_ratio(t["diffai"], nat), None),
        _row(
            f"TRADES-{k} step / natural step (LeNet)",
            r := median_ratio(t["trades"], nat),
            TRADES_GOAL_FACTOR * (k + 1),
            per_k1=r / (k + 1),
        ),
        _row(
            f"dist-{DIST_STEPS} step / natural step (LeNet)",
            r := median_ratio(t["dist"], nat),
            None,
            per_k1=r / (DIST_STEPS + 1),
        ),
    ]
    for proj in DUAL_PROJ:
        r = median_ratio(t[f"dual{proj}"], nat_mlp)
        rows.append(_row(f"dual proj {proj} step / natural step (mlp)", r, None))
    names = ["ibp", "diffai", "trades", "dist"] + [f"dual{p}" for p in DUAL_PROJ]
    for row, name in zip(rows, names, strict=True):
        row["seconds"] = _med(t[name])

    result = {
        "config": {
            "data": "mnist5k",
            "batch_size": a.batch_size,
            "repeats": a.repeats,
            "steps_per_timing": a.steps,
            "threads": threads,
            "threads_after": torch.get_num_threads(),
            "eps": EPS,
            "natural_step_s": {"lenet_mnist": _med(nat), "mlp": _med(nat_mlp)},
            "dual_lenet": dual_lenet,
        },
        "env": env_info(),
        "rows": rows,
    }
    return report(result, a.out, _print_table)


def _print_table(rows: list[dict], cfg: dict) -> None:
    nat = cfg["natural_step_s"]
    print(
        f"mnist5k, batch {cfg['batch_size']}, eps {cfg['eps']}, {cfg['threads']} torch threads, "
        f"median of {cfg['repeats']} interleaved rounds; natural step "
        f"{nat['lenet_mnist'] * 1e3:.1f} ms (LeNet), {nat['mlp'] * 1e3:.1f} ms (mlp)"
    )
    print_ratio_rows(rows, cfg)
    print(cfg["dual_lenet"])


if __name__ == "__main__":
    main()
