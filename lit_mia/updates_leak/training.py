"""A quiet Lightning fit for the Updates-Leak attack modules on in-memory tensors.

`fit_module` trains any of the attack LightningModules for `epochs` epochs on a TensorDataset
(shuffled by a generator seeded with `seed`), without checkpoints, progress bars or summaries;
per-epoch `train/...` metrics go to `logger` (a tracking.LightningLogger with a prefix, or
None). `predict` runs a function of the module in eval mode, in batches, without gradients.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

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
) -> pl.LightningModule:
    """Fit `module` on TensorDataset(*tensors); returns it in eval mode on the CPU."""
    pl.seed_everything(seed, workers=True, verbose=False)
    module.train()
    gen = torch.Generator().manual_seed(seed)
    dl = DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=True, generator=gen)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
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
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*number of training batches.*")
        trainer.fit(module, train_dataloaders=dl)
    return module.cpu().eval()


def predict(fn: Callable[[Tensor], Tensor], module, x: Tensor, batch_size: int = 512) -> Tensor:
    """torch.cat of fn(batch) over x in batches, module in eval mode, no gradients."""
    was = module.training
    module.eval()
    with torch.no_grad():
        out = torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    module.train(was)
    return out


__all__ = ["fit_module", "predict"]
