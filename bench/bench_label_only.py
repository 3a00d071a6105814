"""Label-only attack speed, measured side by side in one process (`make bench`).

LeNet (`lenet_mnist`, trained briefly on mnist5k) and the same `--samples` correctly classified
test images for every variant:

1. HopSkipJump, ours (lit_mia/perturb/hopskipjump.py, all samples batched) vs ART's
   `HopSkipJump` (one sample at a time, `PyTorchClassifier`), both untargeted L2 with the same
   max_iter / max_eval / init_eval / init_size (50 / 10000 / 100 / 100, the released code's:
   docs/reference/paper-defaults.md#label-only-membership-inference).
   Rows: ms per sample of each, the speed-up ART / ours (goal >= 2.5 on CPU), queries per
   second of each, and queries per sample (should agree: the same algorithm).
2. Our query throughput as a fraction of the model's plain batched forward throughput
   (`argmax(net(x))`, no oracle, no attack) at its best batch size among `--forward-batches`
   (per round the fastest; LeNet on one CPU thread peaks near 1024 rows and halves beyond
   2048, which is why the oracle's default chunk is 1024 rows): goal >= 0.80.
3. The augmentation attack (Choquette-Choo et al.) in ms per sample, default settings.

Fairness: one torch thread count for everything, warm-up first, rounds interleaved
(ours, ART, forward, augmentation, ours, ART, ...), medians of per-round values/ratios.
Output: a table on stdout and JSON in bench/results/bench_label_only.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import env_info, interleaved, median_ratio, report

from lit_mia.attacks.label_only.augmentation import (
    AugmentationSettings,
    augmentation_scores,
    n_queries,
)
from lit_mia.attacks.label_only.oracle import LabelOracle
from lit_mia.data.datasets import load_dataset
from lit_mia.nets import build_net
from lit_mia.perturb.hopskipjump import hopskipjump, sample_seeds

RESULTS = Path(__file__).resolve().parent / "results" / "bench_label_only.json"
SPEEDUP_GOAL = 2.5
THROUGHPUT_GOAL = 0.80


class Counting(nn.Module):
    """Counts the rows the wrapped model answers (ART's queries)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += len(x)
        return self.model(x.float())  # ART mixes float64 into its interpolations


def trained_lenet(bundle, steps: int) -> nn.Module:
    """LeNet after `steps` Adam steps (batch 128) on the first 3000 of a fixed permutation."""
    torch.manual_seed(0)
    net = build_net("lenet_mnist", bundle.shape, bundle.n_classes, bundle.mean, bundle.std)
    perm = torch.as_tensor(np.random.default_rng(0).permutation(len(bundle)))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for s in range(steps):
        i = perm[(s * 128) % 3000 :][:128]
        opt.zero_grad()
        nn.functional.cross_entropy(net(bundle.x[i]), bundle.y[i]).backward()
        opt.step()
    return net.eval()


def samples(bundle, net: nn.Module, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n test images (after the training block) that the net classifies correctly."""
    perm = torch.as_tensor(np.random.default_rng(0).permutation(len(bundle)))[3000:]
    x, y = bundle.x[perm], bundle.y[perm]
    with torch.no_grad():
        ok = net(x).argmax(1) == y
    return x[ok][:n], y[ok][:n]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    p.add_argument("--samples", type=int, default=16, help="images attacked per round")
    p.add_argument("--max-iter", type=int, default=50, help="HopSkipJump iterations (both)")
    p.add_argument(
        "--forward-batches",
        type=int,
        nargs="+",
        default=[256, 1024, 4096],
        help="plain forward batch sizes (the fastest is the reference)",
    )
    p.add_argument("--train-steps", type=int, default=300, help="LeNet training steps")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--quick", action="store_true", help="4 samples, 5 iterations, 2 rounds")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    a = p.parse_args(argv)
    if a.quick:
        a.repeats, a.samples, a.max_iter = min(a.repeats, 2), min(a.samples, 4), min(a.max_iter, 5)
        a.train_steps = min(a.train_steps, 100)
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    from art.attacks.evasion import HopSkipJump  # the reference; dev extra
    from art.estimators.classification import PyTorchClassifier

    bundle = load_dataset("mnist5k")
    net = trained_lenet(bundle, a.train_steps)
    x, y = samples(bundle, net, a.samples)
    n = len(x)
    hsj = dict(max_iter=a.max_iter, max_eval=10000, init_eval=100, init_size=100)
    counting = Counting(net)
    clf = PyTorchClassifier(
        counting,
        loss=nn.CrossEntropyLoss(),
        input_shape=bundle.shape,
        nb_classes=bundle.n_classes,
        clip_values=(0.0, 1.0),
    )
    stats: dict[str, list[float]] = {"ours_q": [], "art_q": []}

    def ours() -> float:
        oracle = LabelOracle(net, n)
        t0 = time.perf_counter()
        hopskipjump(oracle, x, y, seeds=sample_seeds(0, range(n)), **hsj)
        dt = time.perf_counter() - t0
        stats["ours_q"].append(oracle.total)
        return dt

    def art() -> float:
        counting.rows = 0
        attack = HopSkipJump(clf, batch_size=1024, verbose=False, **hsj)
        t0 = time.perf_counter()
        attack.generate(x.numpy(), y=None)
        dt = time.perf_counter() - t0
        stats["art_q"].append(counting.rows)
        return dt

    def forward_at(rows: int):
        xf = bundle.x[torch.arange(rows) % len(bundle)]

        @torch.no_grad()
        def forward() -> float:
            t0 = time.perf_counter()
            net(xf).argmax(1)
            return (time.perf_counter() - t0) / rows  # seconds per row

        return forward

    aug = AugmentationSettings()

    def augmentation() -> float:
        oracle = LabelOracle(net, n, budget=n_queries(aug))
        t0 = time.perf_counter()
        augmentation_scores(oracle, x, y, aug, sample_seeds(0, range(n)))
        return time.perf_counter() - t0

    fns = {"ours": ours, "art": art, "augmentation": augmentation}
    fns.update({f"forward_{b}": forward_at(b) for b in a.forward_batches})
    t = interleaved(fns, a.repeats, warmup=1)
    r = a.repeats
    ours_q, art_q = stats["ours_q"][-r:], stats["art_q"][-r:]
    ours_qps = [q / s for q, s in zip(ours_q, t["ours"])]
    art_qps = [q / s for q, s in zip(art_q, t["art"])]
    per_batch = [[1.0 / s for s in t[f"forward_{b}"]] for b in a.forward_batches]
    fwd_qps = [max(v) for v in zip(*per_batch)]  # per round: the fastest batch size
    rows = [
        {"measurement": "ours ms/sample", "value": 1e3 * np.median(t["ours"]) / n},
        {"measurement": "ART ms/sample", "value": 1e3 * np.median(t["art"]) / n},
        {
            "measurement": "speed-up ART / ours (per sample)",
            "value": median_ratio(t["art"], t["ours"]),
            "goal": SPEEDUP_GOAL,
        },
        {"measurement": "ours queries/s", "value": float(np.median(ours_qps))},
        {"measurement": "ART queries/s", "value": float(np.median(art_qps))},
        {"measurement": "ours queries/sample", "value": float(np.median(ours_q)) / n},
        {"measurement": "ART queries/sample", "value": float(np.median(art_q)) / n},
        *(
            {"measurement": f"plain forward rows/s, batch {b}", "value": float(np.median(v))}
            for b, v in zip(a.forward_batches, per_batch)
        ),
        {
            "measurement": "ours queries/s / plain forward rows/s",
            "value": median_ratio(ours_qps, fwd_qps),
            "goal": THROUGHPUT_GOAL,
        },
        {
            "measurement": "augmentation attack ms/sample",
            "value": 1e3 * np.median(t["augmentation"]) / n,
        },
    ]
    for row in rows:
        row.setdefault("goal", None)
        row["pass"] = None if row["goal"] is None else bool(row["value"] >= row["goal"])
    config = {
        "samples": n,
        "max_iter": a.max_iter,
        "repeats": a.repeats,
        "threads": torch.get_num_threads(),
        "forward_batches": a.forward_batches,
        "train_steps": a.train_steps,
        "quick": a.quick,
    }
    result = {"rows": rows, "config": config, "env": env_info(), "times": t}
    return report(result, a.out, print_table)


def print_table(rows: list[dict], cfg: dict) -> None:
    print(
        f"lenet_mnist / mnist5k, {cfg['samples']} samples, HopSkipJump L2 max_iter "
        f"{cfg['max_iter']}, {cfg['threads']} torch threads, median of {cfg['repeats']} rounds"
    )
    for r in rows:
        goal = "" if r["goal"] is None else f"  (goal >= {r['goal']}: "
        goal += "" if r["goal"] is None else ("pass)" if r["pass"] else "FAIL)")
        print(f"  {r['measurement']:<42} {r['value']:>12.3f}{goal}")


if __name__ == "__main__":
    main()
