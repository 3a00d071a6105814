"""A quiet Lightning fit of a small attack model on in-memory tensors.

Used by every attack model that is a LightningModule trained on features: the inference
classifier (attacks/classifier.py) and the Updates-Leak encoder-decoders and CBM-GAN
(updates_leak/). `fit_module` trains for `epochs` epochs on a TensorDataset (shuffled by a
generator seeded with `seed`) on one device, without checkpoints, progress bars, summaries or
Lightning's banners; per-epoch `train/...` metrics go to `logger` (a tracking.LightningLogger
with a prefix, or None). `predict` runs a function of the module in eval mode, in batches,
without gradients.
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
) -> pl.LightningModule:
    """Fit `module` on TensorDataset(*tensors); returns it in eval mode on the CPU."""
    pl.seed_everything(seed, workers=True, verbose=False)
    module.train()
    gen = torch.Generator().manual_seed(seed)
    dl = DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=True, generator=gen)
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
        limit_val_batches=0,
        log_every_n_steps=max(1, len(dl)),
    )
    with quiet():
        trainer.fit(module, train_dataloaders=dl)
    return module.cpu().eval()


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Lightning's per-Trainer banners ("GPU available ...") and loader warnings."""
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


__all__ = ["fit_module", "predict", "quiet"]
