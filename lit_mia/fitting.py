"""A quiet Lightning fit of a small attack model on in-memory tensors.

Used by every attack model that is a LightningModule trained on features: the inference
classifier (attacks/classifier.py) and the Updates-Leak encoder-decoders and CBM-GAN
(attacks/update_leakage/). `fit_module` trains for `epochs` epochs on a TensorDataset (shuffled by a
generator seeded with `seed`) on one device, without checkpoints, progress bars, summaries or
Lightning's banners; per-epoch `train/...` metrics go to `logger` (a tracking.LightningLogger
with a prefix, or None). With `val` (held-out tensors) the module's `validation_step` logs
`val/loss` after every epoch and `KeepBest` restores the weights of the epoch with the lowest
one (early stopping by checkpoint selection, kept in memory); `module.best_epoch` and
`module.best_val` record the choice. `predict` runs a function of the module in eval mode, in
batches, without gradients.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset


def fit_module(
    module: pl.LightningModule,
    tensors: tuple[Tensor, ...],
    *,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    logger=None,
    deterministic: bool | str = True,
    accelerator: str = "cpu",
    val: tuple[Tensor, ...] | None = None,
) -> pl.LightningModule:
    """Fit `module` on TensorDataset(*tensors); returns it in eval mode on the CPU. With `val`:
    the weights of the epoch with the lowest `val/loss` on TensorDataset(*val)."""
    pl.seed_everything(seed, workers=True, verbose=False)
    module.train()
    gen = torch.Generator().manual_seed(seed)
    dl = DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=True, generator=gen)
    val_dl = None if val is None else DataLoader(TensorDataset(*val), batch_size=512)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator=accelerator,
        devices=1,
        logger=logger if logger is not None else False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=deterministic,
        num_sanity_val_steps=0,
        limit_val_batches=0 if val is None else None,
        log_every_n_steps=max(1, len(dl)),
        callbacks=[] if val is None else [KeepBest()],
    )
    with quiet():
        trainer.fit(module, train_dataloaders=dl, val_dataloaders=val_dl)
    return module.cpu().eval()


class KeepBest(pl.Callback):
    """Keeps a copy of the weights whenever `monitor` (logged by validation_step) reaches a
    new minimum and loads the best copy back when fitting ends."""

    def __init__(self, monitor: str = "val/loss") -> None:
        self.monitor = monitor
        self.best: float = float("inf")
        self.epoch: int = -1
        self.state: dict[str, Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        v = trainer.callback_metrics.get(self.monitor)
        if v is None:
            raise RuntimeError(f"{type(pl_module).__name__} logged no {self.monitor!r}")
        if float(v) < self.best:
            self.best, self.epoch = float(v), int(trainer.current_epoch)
            self.state = {k: t.detach().clone() for k, t in pl_module.state_dict().items()}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.state is not None:
            pl_module.load_state_dict(self.state)
        pl_module.best_epoch, pl_module.best_val = self.epoch, self.best


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Lightning's per-Trainer banners ("GPU available ...") and loader warnings; an
    interrupted fit raises KeyboardInterrupt (Lightning turns it into SystemExit(1), which
    would end the MLflow run KILLED but the command with exit code 1)."""
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning.pytorch")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*number of training batches.*")
            warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
            warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")
            yield
    except SystemExit as e:  # Lightning answers Ctrl-C / SIGTERM in fit() with exit(1)
        raise KeyboardInterrupt(f"interrupted during training ({e})") from None
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def predict(fn: Callable[[Tensor], Tensor], module, x: Tensor, batch_size: int = 512) -> Tensor:
    """torch.cat of fn(batch) over x in batches, module in eval mode, no gradients."""
    was = module.training
    module.eval()
    with torch.no_grad():
        out = torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    module.train(was)
    return out


__all__ = ["KeepBest", "fit_module", "predict", "quiet"]
