"""Shadow-farm speed, measured side by side in one process (`make bench`).

1. The farm (lit_mia/models/shadow_farm.py, `farm="auto"`: vmap or loop, whichever its timing
   picks)
   vs a plain loop over models (`farm="loop"`: each model with its own torch.optim optimiser,
   plain PyTorch, no Lightning), and the forced vmap path for context. M = 8 and 32 models of
   the MLP of the LiRA experiment (`mlp` width 0.5) and the Updates-Leak LeNet (`lenet_mnist`
   width 1), natural training, one epoch of `--members` mnist5k samples each, batch 128.
   Ratio = loop seconds / farm seconds (higher is better). Goals: >= 1.0 everywhere (auto
   never picks the slower path), >= 1.5 for the MLP at 32 models on CPU. Timed: the training
   only (`Farm.seconds`); auto's one-off measurement is done in the warm-up round.
2. Shadow models per minute for the LiRA experiment's configuration (conf/experiment/lira.yaml:
   its net, targets, n_shadow, n_members, epochs): one epoch of n_shadow models through the
   farm (auto), scaled to the configured epochs and members.

Fairness: one torch thread count for everything, warm-up first, repetitions interleaved
(A B C A B C ...), the median of the per-round ratios. Absolute times depend on the machine and
its load; ratios are the numbers to read. Output: a table on stdout and JSON in
bench/results/bench_farm.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import env_info, interleaved, median_ratio, report

from lit_mia import config
from lit_mia.attacks.lira import farm_spec
from lit_mia.data.datasets import load_dataset
from lit_mia.models.shadow_farm import TrainSpec, train_farm
from lit_mia.nets import build_net
from lit_mia.training import make_net

RESULTS = Path(__file__).resolve().parent / "results" / "bench_farm.json"
NETS = {"mlp": ("mlp", 0.5), "lenet": ("lenet_mnist", 1.0)}
GOAL = 1.0
MLP32_GOAL = 1.5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="interleaved repetitions (median)")
    p.add_argument("--members", type=int, default=1000, help="training samples per model")
    p.add_argument("--models", type=int, nargs="+", default=[8, 32])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="3 repeats, 512 members: a smoke run")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    a = p.parse_args(argv)
    if a.quick:
        a.repeats, a.members = min(a.repeats, 3), min(a.members, 512)
    return a


def sets_for(n_total: int, m: int, size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [np.sort(rng.choice(n_total, size, replace=False)) for _ in range(m)]


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    bundle = load_dataset("mnist5k")
    x, y = bundle.x, bundle.y
    rows: list[dict] = []

    # 1. farm (auto) vs plain loop, and forced vmap
    spec = TrainSpec(batch_size=128, epochs=1)
    for key, (name, width) in NETS.items():

        def mk(name=name, width=width):
            return build_net(
                name, bundle.shape, bundle.n_classes, bundle.mean, bundle.std, width=width
            )

        for m in a.models:
            sets, seeds = sets_for(len(bundle), m, a.members), list(range(m))
            picked: list[str] = []

            def run(farm: str, sets=sets, seeds=seeds, mk=mk, picked=picked) -> float:
                f = train_farm(mk, x, y, sets, seeds, spec, farm=farm)
                if farm == "auto":
                    picked.append(f.path)
                return f.seconds

            fns = {p: (lambda p=p: run(p)) for p in ("loop", "auto", "vmap")}
            t = interleaved(fns, a.repeats, warmup=1)
            goal = MLP32_GOAL if (key == "mlp" and m == 32) else GOAL
            ratio = median_ratio(t["loop"], t["auto"])
            rows.append(
                {
                    "label": f"{name} x{m}: farm (auto -> {picked[-1]}) vs loop",
                    "net": name,
                    "models": m,
                    "ratio": ratio,
                    "vmap_ratio": median_ratio(t["loop"], t["vmap"]),
                    "loop_s": statistics.median(t["loop"]),
                    "farm_s": statistics.median(t["auto"]),
                    "vmap_s": statistics.median(t["vmap"]),
                    "picked": picked[-1],
                    "goal": goal,
                    "pass": ratio >= goal,
                }
            )

    # 2. shadow models per minute for the LiRA experiment
    through = []
    for cfg in config.per_target("lira"):
        lc = cfg.attack.lira
        epochs = int(lc.epochs) if lc.epochs is not None else int(cfg.trainer.max_epochs)
        one = farm_spec(cfg, 1)
        if one is None:
            continue
        n, m = int(cfg.data.n_members), int(lc.n_shadow)
        used = min(n, a.members)
        sets = sets_for(len(bundle), m, used)
        f = train_farm(lambda cfg=cfg: make_net(cfg, bundle), x, y, sets, list(range(m)), one)
        per_model_min = f.seconds * (n / used) * epochs / m / 60.0
        through.append(
            {
                "target": str(cfg.label or cfg.target.name),
                "net": f"{cfg.net.name} width {cfg.net.width}",
                "models": m,
                "members": n,
                "epochs": epochs,
                "path": f.path,
                "epoch_s_measured": f.seconds,
                "members_measured": used,
                "shadow_models_per_min": 1.0 / per_model_min,
            }
        )
    result = {
        "config": {
            "members": a.members,
            "batch_size": spec.batch_size,
            "repeats": a.repeats,
            "threads": threads,
            "quick": a.quick,
            "env": env_info(),
        },
        "rows": rows,
        "lira_throughput": through,
    }
    return report(result, a.out, _print_table)


def _print_table(rows: list[dict], cfg: dict) -> None:
    print(
        f"mnist5k, {cfg['members']} samples per model, batch {cfg['batch_size']}, one natural "
        f"epoch, {cfg['threads']} torch threads, median of {cfg['repeats']} interleaved rounds"
    )
    w = max(len(r["label"]) for r in rows)
    print(f"{'measurement':<{w}}  {'ratio':>6}  {'vmap':>6}  {'goal':>7}  result")
    for r in rows:
        res = "pass" if r["pass"] else "FAIL"
        print(
            f"{r['label']:<{w}}  {r['ratio']:6.2f}  {r['vmap_ratio']:6.2f}  >= {r['goal']:.2f}  "
            f"{res}"
        )


def print_throughput(result: dict) -> None:
    for t in result["lira_throughput"]:
        print(
            f"LiRA experiment, {t['target']} target ({t['net']}, {t['models']} shadow models, "
            f"{t['members']} members, {t['epochs']} epochs, {t['path']}): "
            f"{t['shadow_models_per_min']:.1f} shadow models / min"
        )


if __name__ == "__main__":
    print_throughput(main())
