"""The base models of update leakage (Salem et al. USENIX Security'20, §3): trained with
lit_mia.training.fit_target under the experiment's target regime, net and trainer, for
updates.base_epochs epochs in batches of updates.base_batch_size; `base_fields` is what keys
them in the model cache besides their seed and training indices."""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from lit_mia.training import fit_target, make_net


def base_fitter(cfg: DictConfig, bundle):
    """fit(train_idx, seed, train=True) -> base net: lit_mia.training.fit_target with the
    experiment's target regime, net and trainer, for updates.base_epochs epochs in batches of
    updates.base_batch_size (the bare net: prediction-time temperature scaling is not applied
    to the posteriors); train=False: the untrained net (to load cached weights into)."""
    bcfg = _base_cfg(cfg)

    def fit_base(idx: np.ndarray, seed: int, train: bool = True) -> torch.nn.Module:
        if not train:
            return make_net(bcfg, bundle)
        return fit_target(bcfg, bundle, np.asarray(idx), None, seed=seed).net

    return fit_base


def base_fields(cfg: DictConfig, bundle) -> dict:
    """What determines a base model besides its seed and training indices (cache key)."""
    u, t = cfg.updates, cfg.trainer
    return {
        "what": "updates_leak base model",
        "dataset": bundle.name,
        "net": cfg.net,
        "target": cfg.target,
        "trainer": {x: t[x] for x in ("accelerator", "precision", "deterministic", "devices")},
        "base_epochs": int(u.base_epochs),
        "base_batch_size": int(u.base_batch_size),
        "torch": torch.__version__.split("+")[0],
    }


def _base_cfg(cfg: DictConfig) -> DictConfig:
    b = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    b.trainer.max_epochs = int(cfg.updates.base_epochs)
    b.trainer.enable_progress_bar = False
    b.data.batch_size = int(cfg.updates.base_batch_size)
    return b


__all__ = ["base_fields", "base_fitter"]
