"""Training-speed ratios, measured side by side in one process (`make bench`).

LeNet (`lenet_mnist`) on mnist5k, `--members` training samples, batch `--batch-size`:

1. Lightning overhead: one natural epoch through the `pl.Trainer` of `lit_mia.training.make_trainer`
   (no logger, no progress bar, no checkpointing, no validation) fitting `NaturalTarget` on
   `MembershipDataModule`, vs a plain PyTorch loop doing the same work (same net and init,
   Adam, the same DataLoader; forward + CE + backward + step). Timed from the epoch's start to
   the end of its metric logging. Goal: <= 1.10. Context rows: the same fit including Trainer
   construction and fit setup, and the epoch with the per-epoch validation (val/adv_acc runs
   PGD with `trainer.val_adv_steps` steps on the validation set) that `lit-mia run` does.
2. PGD-k training step (`PGDTarget.training_loss` + backward + Adam step) vs the natural step
   (`NaturalTarget.training_loss` + backward + step) on the same batch. Goal: <= 1.5 * (k + 1).
   A naive PGD (parameter .grad via `loss.backward()` every attack step, `model.zero_grad()`)
   is timed alongside for context: the cost that `autograd.grad` on the input avoids.

Fairness: one torch thread count for everything, warm-up first, repetitions interleaved
(A B A B ...) so background load hits every variant alike, the median of the per-round ratios.
Ratios are the numbers to read; absolute times depend on the machine and its load.
Output: a table on stdout and JSON in bench/results/bench_training.json.
"""

from __future__ import annotations

import argparse
import json
import logging
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
from lit_mia.targets import NaturalTarget, PGDSettings, PGDTarget, TargetModule, TargetSettings
from lit_mia.training import make_net, make_trainer

RESULTS = Path(__file__).resolve().parent / "results" / "bench_training.json"
LIGHTNING_GOAL = 1.10
PGD_GOAL_FACTOR = 1.5  # PGD-k step <= 1.5 * (k + 1) natural steps
PGD_EPS, PGD_STEP_SIZE = PGDSettings.eps, PGDSettings.step_size  # 0.1, 0.02 (CCS'19 FMNIST)


# ---------------------------------------------------------------- timing helpers
def interleaved(fns: dict[str, Callable[[], float]], repeats: int, warmup: int) -> dict:
    """Call each fn `warmup` times, then `repeats` times round-robin; fn returns its seconds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(fn())
    return times


def median_ratio(num: list[float], den: list[float]) -> float:
    """Median over rounds of num[i] / den[i] (the two ran back to back in round i)."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


# ---------------------------------------------------------------- 1. Lightning vs plain
class EpochTimer(pl.Callback):
    """Seconds from the start of the (single) epoch to the end of training."""

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start


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
    """One natural epoch through `make_trainer`'s Trainer; returns the epoch's seconds."""

    def __init__(self, cfg, bundle: DatasetBundle, idx: np.ndarray, val_idx=None) -> None:
        self.cfg, self.bundle, self.idx, self.val_idx = cfg, bundle, idx, val_idx
        self.setup: list[float] = []  # fit wall time minus the epoch: Trainer build + fit setup

    def __call__(self) -> float:
        t0 = time.perf_counter()
        torch.manual_seed(0)
        val_steps = self.cfg.trainer.val_adv_steps if self.val_idx is not None else 0
        net = make_net(self.cfg, self.bundle)
        module = NaturalTarget(
            net, TargetSettings(lr=1e-3), eval_eps=PGD_EPS, val_adv_steps=val_steps
        )
        bs = self.cfg.data.batch_size
        dm = MembershipDataModule(self.bundle, self.idx, self.val_idx, batch_size=bs)
        timer = EpochTimer()
        trainer = make_trainer(self.cfg, None, has_val=self.val_idx is not None)
        trainer.callbacks.append(timer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(module, datamodule=dm)
        self.setup.append(time.perf_counter() - t0 - timer.seconds)
        return timer.seconds


class _NoLogTarget(NaturalTarget):
    """NaturalTarget without any self.log: what Lightning alone costs."""

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y, idx = batch
        return self.training_loss(x, y, idx)[0]

    def on_train_epoch_end(self) -> None:
        pass


class LightningFloor:
    """Lightning's own floor: `Trainer(barebones=True)` fitting `_NoLogTarget`, one epoch."""

    def __init__(self, cfg, bundle: DatasetBundle, idx: np.ndarray) -> None:
        self.cfg, self.bundle, self.idx = cfg, bundle, idx

    def __call__(self) -> float:
        torch.manual_seed(0)
        module = _NoLogTarget(
            make_net(self.cfg, self.bundle), TargetSettings(lr=1e-3), val_adv_steps=0
        )
        dm = MembershipDataModule(self.bundle, self.idx, None, batch_size=self.cfg.data.batch_size)
        timer = EpochTimer()
        trainer = pl.Trainer(
            barebones=True,
            max_epochs=1,
            accelerator=self.cfg.trainer.accelerator,
            devices=1,
            deterministic=self.cfg.trainer.deterministic,
            inference_mode=False,
            limit_val_batches=0,
            callbacks=[timer],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(module, datamodule=dm)
        return timer.seconds


class PlainEpoch:
    """The same epoch as a plain PyTorch loop: same net and init, Adam, the same DataLoader."""

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
            F.cross_entropy(net(x), y).backward()
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


class TrainStep:
    """Seconds per optimisation step of `module` on a fixed batch, averaged over `n` steps."""

    def __init__(
        self, module: TargetModule, batch: tuple[Tensor, Tensor, Tensor], n: int, naive_k: int = 0
    ) -> None:
        self.module, self.batch, self.n, self.naive_k = module.train(), batch, n, naive_k
        self.opt = module.configure_optimizers()

    def __call__(self) -> float:
        x, y, idx = self.batch
        t0 = time.perf_counter()
        for _ in range(self.n):
            self.module._step_adv = None  # a new training step: no cached adversarial batch
            self.opt.zero_grad()
            if self.naive_k:
                x_adv = naive_pgd(self.module.net, x, y, PGD_EPS, self.naive_k, PGD_STEP_SIZE)
                loss, _ = self.module.training_loss(x_adv, y, idx)
            else:
                loss, _ = self.module.training_loss(x, y, idx)
            loss.backward()
            self.opt.step()
        return (time.perf_counter() - t0) / self.n


# ---------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7, help="interleaved repetitions (median)")
    p.add_argument("--members", type=int, default=2000, help="training samples from mnist5k")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=8, help="optimisation steps per step timing")
    p.add_argument("--k", type=int, nargs="+", default=[8, 3], help="PGD steps to measure")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="3 repeats, 512 members: a smoke run")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    a = p.parse_args(argv)
    if a.quick:
        a.repeats, a.members, a.steps = min(a.repeats, 3), min(a.members, 512), min(a.steps, 2)
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # no "GPU available" banners per fit
    if a.threads:
        torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    cfg = bench_cfg(a.batch_size)
    bundle = load_dataset("mnist5k")
    perm = np.random.default_rng(0).permutation(len(bundle))  # mnist5k is sorted by label
    idx = perm[: a.members]
    val_idx = perm[a.members : a.members + cfg.data.n_validation]
    # The Trainer sets this process-wide flag; set it up front so every loop runs under it.
    det = cfg.trainer.deterministic  # true | false | "warn"
    torch.use_deterministic_algorithms(bool(det), warn_only=det == "warn")
    rows: list[dict] = []

    # 1. Lightning epoch vs plain epoch; the floor and val variants are context, same rounds
    lit, plain = LightningEpoch(cfg, bundle, idx), PlainEpoch(cfg, bundle, idx)
    fns1 = {
        "lightning": lit,
        "plain": plain,
        "floor": LightningFloor(cfg, bundle, idx),
        "lightning+val": LightningEpoch(cfg, bundle, idx, val_idx),
    }
    t = interleaved(fns1, a.repeats, warmup=2)
    setup = lit.setup[-a.repeats :]
    with_setup = [e + s for e, s in zip(t["lightning"], setup, strict=True)]
    val_name = f"with per-epoch val ({len(val_idx)} samples, PGD-{cfg.trainer.val_adv_steps})"
    for name, times, goal, extra in (
        ("lightning / plain epoch", t["lightning"], LIGHTNING_GOAL, {}),
        ("  Lightning floor (barebones, no self.log)", t["floor"], None, {}),
        ("  incl. Trainer build + fit setup", with_setup, None, {"setup_s": _med(setup)}),
        (f"  {val_name}", t["lightning+val"], None, {}),
    ):
        ratio = median_ratio(times, t["plain"])
        rows.append(_row(name, ratio, goal, seconds=_med(times), plain_s=_med(t["plain"]), **extra))

    # 2. PGD-k step vs natural step, on one batch of the members
    take = torch.as_tensor(idx[: a.batch_size])
    batch = (bundle.x[take], bundle.y[take], take)
    torch.manual_seed(0)
    fns: dict[str, Callable[[], float]] = {
        "natural": TrainStep(NaturalTarget(make_net(cfg, bundle)), batch, a.steps)
    }
    for k in a.k:
        settings = PGDSettings(eps=PGD_EPS, steps=k, step_size=PGD_STEP_SIZE)
        target = PGDTarget(make_net(cfg, bundle), settings)
        fns[f"pgd{k}"] = TrainStep(target, batch, a.steps)
        fns[f"naive{k}"] = TrainStep(NaturalTarget(make_net(cfg, bundle)), batch, a.steps, k)
    t2 = interleaved(fns, a.repeats, warmup=1)
    for k in a.k:
        for kind, name, goal in (
            (f"pgd{k}", f"PGD-{k} step / natural step", PGD_GOAL_FACTOR * (k + 1)),
            (f"naive{k}", f"  naive PGD-{k} (param .grad) / natural", None),
        ):
            r = median_ratio(t2[kind], t2["natural"])
            rows.append(_row(name, r, goal, per_k1=r / (k + 1), seconds=_med(t2[kind])))

    result = {
        "config": {
            "net": "lenet_mnist",
            "data": "mnist5k",
            "members": a.members,
            "batch_size": a.batch_size,
            "repeats": a.repeats,
            "steps_per_timing": a.steps,
            "k": a.k,
            "threads": threads,
            "threads_after": torch.get_num_threads(),
            "deterministic": cfg.trainer.deterministic,
            "natural_step_s": _med(t2["natural"]),
        },
        "env": env_info(),
        "rows": rows,
    }
    return report(result, a.out)


def env_info() -> dict:
    """Versions and machine, stored beside every bench result."""
    return {
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def report(result: dict, out: Path, print_table=None) -> dict:
    """Print the result's table (`print_table(rows, config)`) and write it as JSON to `out`."""
    (print_table or _print_table)(result["rows"], result["config"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return result


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def _row(name: str, ratio: float, goal: float | None, **extra) -> dict:
    ok = None if goal is None else bool(ratio <= goal)
    return {
        "measurement": name.strip(),
        "ratio": ratio,
        "goal": goal,
        "pass": ok,
        "label": name,
        **extra,
    }


def _print_table(rows: list[dict], cfg: dict) -> None:
    print(
        f"lenet_mnist / mnist5k, {cfg['members']} members, batch {cfg['batch_size']}, "
        f"{cfg['threads']} torch threads, median of {cfg['repeats']} interleaved rounds; "
        f"natural step {cfg['natural_step_s'] * 1e3:.1f} ms"
    )
    print_ratio_rows(rows, cfg)


def print_ratio_rows(rows: list[dict], cfg: dict) -> None:
    """The ratio table shared by the training and regime benches (goal = upper bound)."""
    w = max(len(r["label"]) for r in rows)
    print(f"{'measurement':<{w}}  {'ratio':>7}  {'goal':>8}  result")
    for r in rows:
        goal = "-" if r["goal"] is None else f"<= {r['goal']:.2f}"
        res = "-" if r["pass"] is None else ("pass" if r["pass"] else "FAIL")
        note = f"  = {r['per_k1']:.2f} x (k+1)" if "per_k1" in r else ""
        print(f"{r['label']:<{w}}  {r['ratio']:7.3f}  {goal:>8}  {res:<6}{note}")
    if cfg["threads_after"] != cfg["threads"]:
        print(f"note: torch threads changed during the run: {cfg['threads_after']}")


if __name__ == "__main__":
    main()
