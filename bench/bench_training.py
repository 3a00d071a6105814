"""Training-speed ratios, measured side by side in one process (`make bench`).

LeNet (`lenet_mnist`) on mnist5k, `--members` training samples, batch `--batch-size`:

1. Lightning overhead: one natural epoch through `pl.Trainer` as `lit_mia.run.make_trainer`
   builds it (no logger, no progress bar, no checkpointing, no validation) fitting
   `NaturalTarget` on `MembershipDataModule`, vs a plain PyTorch loop doing the same work
   (same net and init, Adam, same DataLoader, forward + CE + backward + step). The epoch is
   timed from the first batch request to the end of the epoch's metric logging; Trainer
   construction and `fit` setup are reported separately for context. Goal: <= 1.10.
2. PGD-k training step (`PGDTarget.training_loss` + backward + Adam step) vs the natural step
   (`NaturalTarget.training_loss` + backward + step) on the same batch. Goal: <= 1.5 * (k + 1).
   A naive PGD (parameter .grad via `loss.backward()` each attack step, `model.zero_grad()`)
   is timed alongside, for context: it is what `autograd.grad` on the input saves.

Fairness: one torch thread count for everything, warm-up first, repetitions interleaved
(A B A B ...) so background load hits every variant alike, and the median of `--repeats`.
Ratios are the quantity to read; absolute times depend on the machine and its load.
Results: a table on stdout and JSON in bench/results/bench_training.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia import config
from lit_mia.data.datamodule import MembershipDataModule, loader
from lit_mia.data.datasets import DatasetBundle, load_dataset
from lit_mia.run import make_net, make_trainer
from lit_mia.targets import NaturalTarget, PGDTarget, TargetModule

RESULTS = Path(__file__).resolve().parent / "results" / "bench_training.json"
LIGHTNING_GOAL = 1.10
PGD_GOAL_FACTOR = 1.5  # PGD-k step <= 1.5 * (k + 1) natural steps
PGD_EPS, PGD_STEP = 0.1, 0.02  # conf/target/pgd.yaml (CCS'19 FMNIST)


# ---------------------------------------------------------------- timing helpers
def interleaved(fns: dict[str, Callable[[], float]], repeats: int, warmup: int) -> dict:
    """Run each fn `warmup` then `repeats` times, round-robin; fn returns seconds it took."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(fn())
    return times


def median_ratio(num: list[float], den: list[float]) -> float:
    """Median over repetitions of the per-round ratio (num[i] and den[i] ran back to back)."""
    return statistics.median(a / b for a, b in zip(num, den))


# ---------------------------------------------------------------- 1. Lightning vs plain
class EpochTimer(pl.Callback):
    """Wall time of the (single) training epoch: first batch request to epoch-end logging."""

    def __init__(self) -> None:
        self.start = self.stop = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.stop = time.perf_counter()


def bench_cfg(batch_size: int):
    return config.load(
        "default",
        [
            "data.name=mnist5k",
            "net.name=lenet_mnist",
            f"data.batch_size={batch_size}",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
        ],
    )


class LightningEpoch:
    """One natural epoch through the Trainer of `make_trainer`; returns the epoch seconds."""

    def __init__(self, cfg, bundle: DatasetBundle, idx: np.ndarray) -> None:
        self.cfg, self.bundle, self.idx = cfg, bundle, idx
        self.setup: list[float] = []  # fit wall time minus the epoch (Trainer build + fit setup)

    def __call__(self) -> float:
        t0 = time.perf_counter()
        torch.manual_seed(0)
        module = NaturalTarget(make_net(self.cfg, self.bundle), lr=1e-3, val_adv_steps=0)
        dm = MembershipDataModule(self.bundle, self.idx, None, batch_size=self.cfg.data.batch_size)
        timer = EpochTimer()
        trainer = make_trainer(self.cfg, None, has_val=False)
        trainer.callbacks.append(timer)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*number of training batches.*")
            trainer.fit(module, datamodule=dm)
        epoch = timer.stop - timer.start
        self.setup.append(time.perf_counter() - t0 - epoch)
        return epoch


class PlainEpoch:
    """The same epoch as a plain PyTorch loop: same net and init, Adam, same DataLoader."""

    def __init__(self, cfg, bundle: DatasetBundle, idx: np.ndarray) -> None:
        self.cfg, self.bundle, self.idx = cfg, bundle, idx

    def __call__(self) -> float:
        torch.manual_seed(0)
        net = make_net(self.cfg, self.bundle).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        dl = loader(self.bundle, self.idx, self.cfg.data.batch_size, shuffle=True)
        t0 = time.perf_counter()
        for x, y, _ in dl:
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0


# ---------------------------------------------------------------- 2. PGD-k vs natural step
def naive_pgd(net: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int, step: float) -> Tensor:
    """PGD the slow way: full `loss.backward()` (weight grads too) and zero_grad every step."""
    lower, upper = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    x_adv = torch.min(torch.max(x + (2 * torch.rand_like(x) - 1) * eps, lower), upper)
    net.eval()
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        net.zero_grad()
        F.cross_entropy(net(x_adv), y, reduction="sum").backward()
        x_adv = torch.min(torch.max(x_adv + step * x_adv.grad.sign(), lower), upper)
    net.train()
    net.zero_grad()
    return x_adv.detach()


class Step:
    """One optimisation step of a target on a fixed batch, timed over `n` steps."""

    def __init__(self, module: TargetModule, batch: tuple[Tensor, Tensor, Tensor], n: int,
                 naive_steps: int = 0) -> None:  # fmt: skip
        self.module, self.batch, self.n, self.naive_steps = module.train(), batch, n, naive_steps
        self.opt = module.configure_optimizers()

    def __call__(self) -> float:
        x, y, idx = self.batch
        t0 = time.perf_counter()
        for _ in range(self.n):
            self.opt.zero_grad()
            if self.naive_steps:
                x_adv = naive_pgd(self.module.net, x, y, PGD_EPS, self.naive_steps, PGD_STEP)
                loss, _ = self.module.training_loss(x_adv, y, idx)  # natural loss on x_adv
            else:
                loss, _ = self.module.training_loss(x, y, idx)
            loss.backward()
            self.opt.step()
        return (time.perf_counter() - t0) / self.n


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7, help="interleaved repetitions (median)")
    p.add_argument("--members", type=int, default=2000, help="training samples (mnist5k)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="optimisation steps per step timing")
    p.add_argument("--k", type=int, nargs="+", default=[8, 3], help="PGD steps to measure")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="few repeats and members: a smoke run")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if a.quick:
        a.repeats, a.members, a.steps = min(a.repeats, 3), min(a.members, 512), min(a.steps, 3)
    if a.threads:
        torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()

    cfg = bench_cfg(a.batch_size)
    bundle = load_dataset("mnist5k")
    idx = np.random.default_rng(0).permutation(len(bundle))[: a.members]  # sorted by label
    rows: list[dict] = []

    # 1. Lightning epoch vs plain epoch
    torch.use_deterministic_algorithms(bool(cfg.trainer.deterministic))  # as the Trainer sets it
    lit, plain = LightningEpoch(cfg, bundle, idx), PlainEpoch(cfg, bundle, idx)
    t = interleaved({"lightning": lit, "plain": plain}, a.repeats, warmup=2)
    setup = lit.setup[-a.repeats :]
    rows.append(_row("lightning / plain epoch", median_ratio(t["lightning"], t["plain"]),
                     LIGHTNING_GOAL, lightning_s=t["lightning"], plain_s=t["plain"]))  # fmt: skip
    epoch_plus_setup = [e + s for e, s in zip(t["lightning"], setup)]
    rows.append(_row("lightning fit(1 epoch) incl. setup / plain epoch",
                     median_ratio(epoch_plus_setup, t["plain"]), None, setup_s=setup))  # fmt: skip
    if torch.get_num_threads() != threads:
        raise RuntimeError(f"thread count changed: {threads} -> {torch.get_num_threads()}")

    # 2. PGD-k step vs natural step, on one batch of the members
    take = torch.as_tensor(idx[: a.batch_size])
    batch = (bundle.x[take], bundle.y[take], take)
    torch.manual_seed(0)
    fns: dict[str, Callable[[], float]] = {
        "natural": Step(NaturalTarget(make_net(cfg, bundle)), batch, a.steps)
    }
    for k in a.k:
        pgd_t = PGDTarget(make_net(cfg, bundle), eps=PGD_EPS, steps=k, step_size=PGD_STEP)
        fns[f"pgd{k}"] = Step(pgd_t, batch, a.steps)
        fns[f"naive{k}"] = Step(NaturalTarget(make_net(cfg, bundle)), batch, a.steps, k)
    t2 = interleaved(fns, a.repeats, warmup=1)
    for k in a.k:
        goal = PGD_GOAL_FACTOR * (k + 1)
        for kind, label in ((f"pgd{k}", f"PGD-{k} step / natural step"),
                            (f"naive{k}", f"naive PGD-{k} step / natural step")):  # fmt: skip
            r = median_ratio(t2[kind], t2["natural"])
            rows.append(_row(label, r, goal if kind.startswith("pgd") else None,
                             per_k1=r / (k + 1), step_s=t2[kind]))  # fmt: skip
    rows.append(_row("natural step (seconds)", statistics.median(t2["natural"]), None))

    result = {
        "config": {"members": a.members, "batch_size": a.batch_size, "repeats": a.repeats,
                   "steps_per_timing": a.steps, "k": a.k, "threads": threads,
                   "deterministic": bool(cfg.trainer.deterministic), "net": "lenet_mnist",
                   "data": "mnist5k"},
        "env": {"torch": torch.__version__, "lightning": pl.__version__,
                "python": platform.python_version(), "machine": platform.machine()},
        "rows": rows,
    }  # fmt: skip
    _print_table(rows, result["config"])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {a.out}")
    return result


def _row(name: str, value: float, goal: float | None, **extra) -> dict:
    ok = None if goal is None else bool(value <= goal)
    return {"measurement": name, "ratio": value, "goal": goal, "pass": ok, **extra}


def _print_table(rows: list[dict], cfg: dict) -> None:
    print(
        f"lenet_mnist / mnist5k, {cfg['members']} members, batch {cfg['batch_size']}, "
        f"{cfg['threads']} torch threads, median of {cfg['repeats']} interleaved repeats"
    )
    w = max(len(r["measurement"]) for r in rows)
    print(f"{'measurement':<{w}}  {'ratio':>8}  {'goal':>8}  result")
    for r in rows:
        goal = "-" if r["goal"] is None else f"<= {r['goal']:.2f}"
        res = "-" if r["pass"] is None else ("pass" if r["pass"] else "FAIL")
        extra = f"  ({r['per_k1']:.2f} x (k+1))" if "per_k1" in r else ""
        print(f"{r['measurement']:<{w}}  {r['ratio']:8.3f}  {goal:>8}  {res}{extra}")


if __name__ == "__main__":
    main()
