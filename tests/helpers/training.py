"""Shared pieces of the target tests: a tiny net and a quiet CPU Trainer fit."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from lit_mia.data.datamodule import MembershipDataModule
from lit_mia.nets import build_net


def small_net(bundle, seed: int = 0, name: str = "mlp", width: float = 0.25, dropout=0.0):
    """A seeded small net for `bundle` (digits-sized data by default)."""
    torch.manual_seed(seed)
    return build_net(
        name, bundle.shape, bundle.n_classes, bundle.mean, bundle.std, width=width, dropout=dropout
    )


def fit_tiny(module, bundle, idx, epochs=2, val_idx=None, augment="none", callbacks=()):
    """Fit `module` on `idx` (validating on `val_idx` if given) as lit_mia.run does, quietly."""
    has_val = val_idx is not None and len(np.asarray(val_idx)) > 0
    dm = MembershipDataModule(
        bundle, idx, val_idx if has_val else None, batch_size=32, seed=0, augment=augment
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        inference_mode=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if has_val else 0,
        deterministic=True,
        callbacks=list(callbacks),
    )
    trainer.fit(module, datamodule=dm)
    return trainer
