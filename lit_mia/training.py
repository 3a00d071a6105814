"""Building and training targets: the data split, the net, the Lightning Trainer, one fit.

    bundle, split = build_data(cfg)                       # data/: dataset + membership split
    module = fit_target(cfg, bundle, split.members, split.validation)   # targets/: the regime
    sets = eval_sets(bundle, split.members, split.nonmembers, n)  # equal members / non-members
    target_metrics(cfg, Predictor(module, sets))          # CCS'19 benign / PGD-20 accuracy

Everything here is a function of the resolved config; nothing imports the attacks, the
tracking layer or run.py. Fits run on every rank under DDP (each rank executes them).
"""

from __future__ import annotations

import atexit

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from lit_mia.data.datamodule import MembershipDataModule
from lit_mia.data.datasets import DatasetBundle, load_dataset
from lit_mia.data.splits import MembershipSplit, make_split
from lit_mia.errors import ConfigError
from lit_mia.fitting import quiet
from lit_mia.metrics import keys
from lit_mia.nets import build_net
from lit_mia.perturb.pgd import AttackPGD
from lit_mia.predictor import Predictor
from lit_mia.progress import FitProgress
from lit_mia.targets import TargetModule, build_target, eval_eps


def build_data(
    cfg: DictConfig, bundles: dict | None = None
) -> tuple[DatasetBundle, MembershipSplit]:
    """The data set and this config's membership split; `bundles` caches loaded data sets
    across the targets of one experiment (their splits may differ, e.g. data.n_members)."""
    d = cfg.data
    key = (str(d.name), str(d.root), bool(d.download))
    if bundles is not None and key in bundles:
        bundle = bundles[key]
    else:
        bundle = load_dataset(d.name, root=d.root, download=d.download)
        if bundles is not None:
            bundles[key] = bundle
    split = make_split(
        len(bundle),
        n_members=d.n_members,
        n_nonmembers=d.n_nonmembers,
        n_validation=d.n_validation,
        n_shadow=d.n_shadow,
        n_probe=d.n_probe,
        seed=cfg.seed,
        dataset=d.name,
    )
    return bundle, split


def make_net(cfg: DictConfig, bundle: DatasetBundle) -> torch.nn.Module:
    """The configured architecture (`net.*`) for the data set's shape and classes."""
    n = cfg.net
    return build_net(
        n.name,
        bundle.shape,
        bundle.n_classes,
        bundle.mean,
        bundle.std,
        width=n.width,
        depth=n.depth,
        dropout=n.dropout,
        activation=n.activation,
    )


def _destroy_process_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class DestroyGlooGroupAtExit(pl.Callback):
    """Destroy a gloo process group before the (DDP worker) interpreter exits.

    Lightning registers this exit handler only for NCCL; a gloo group left to interpreter
    finalization can take a spawned CPU-DDP worker down with `terminate called without an
    active exception` (SIGABRT) after a successful fit (seen in about half of the ddp_spawn
    runs of tests/integration/test_ddp.py). Every Trainer of `make_trainer` carries it; it acts
    only once a gloo group exists, and registers one handler per process however many fits.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_backend() == "gloo":
            atexit.unregister(_destroy_process_group)  # at most one registration
            atexit.register(_destroy_process_group)


def make_trainer(
    cfg: DictConfig, logger, has_val: bool, callbacks=(), name: str | None = None
) -> pl.Trainer:
    """The Lightning Trainer of `trainer.*` (cpu | gpu | ddp), without checkpoints. Progress is
    lit_mia.progress's one line per model named `name` (default the target's label) when
    `trainer.enable_progress_bar`; Lightning's tqdm bar is always off (312 KB per piped run).
    DestroyGlooGroupAtExit makes CPU DDP workers exit cleanly."""
    t = cfg.trainer
    shown = [FitProgress(name or label_of(cfg))] if t.enable_progress_bar else []
    return pl.Trainer(
        callbacks=[*callbacks, *shown, DestroyGlooGroupAtExit()],
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        precision=t.precision,
        deterministic=t.deterministic,
        logger=logger if logger is not None else False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        inference_mode=False,  # PGD needs input gradients inside validation
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if has_val else 0,
        check_val_every_n_epoch=t.val_every_n_epochs,
        log_every_n_steps=t.log_every_n_steps,
    )


def check_trainer(cfg: DictConfig) -> None:
    """Build the Trainer once so an unavailable accelerator/strategy is a ConfigError."""
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    try:
        make_trainer(cfg, None, False)
    except (MisconfigurationException, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"trainer (accelerator={cfg.trainer.accelerator}, devices={cfg.trainer.devices}, "
            f"strategy={cfg.trainer.strategy}) cannot start here: {first}"
        ) from None


def fit_target(
    cfg: DictConfig,
    bundle: DatasetBundle,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None,
    *,
    logger=None,
    seed: int | None = None,
    callbacks=(),
) -> TargetModule:
    """Train one model of the configured regime on `train_idx` (all ranks under DDP)."""
    seed = cfg.seed if seed is None else seed
    pl.seed_everything(seed, workers=True, verbose=False)
    module = build_target(cfg, make_net(cfg, bundle), torch.tensor(train_idx, dtype=torch.long))
    has_val = val_idx is not None and len(val_idx) > 0
    dm = MembershipDataModule(
        bundle,
        train_idx,
        val_idx if has_val else None,
        batch_size=cfg.data.batch_size,
        num_workers=cfg.data.num_workers,
        seed=seed,
        augment=cfg.data.augment,
    )
    name = label_of(cfg) if seed == cfg.seed else f"{label_of(cfg)} (seed {seed})"
    with quiet():
        make_trainer(cfg, logger, has_val, callbacks, name).fit(module, datamodule=dm)
    return module.cpu().eval()


def with_epochs(cfg: DictConfig, epochs: int | None) -> DictConfig:
    """cfg with trainer.max_epochs = epochs (cfg itself when epochs is None or the same)."""
    if epochs is None or int(epochs) == int(cfg.trainer.max_epochs):
        return cfg
    return OmegaConf.merge(cfg, {"trainer": {"max_epochs": int(epochs)}})


def label_of(cfg: DictConfig) -> str:
    """A target's name in run names and tables: its `targets` entry, else the regime name."""
    return str(cfg.label or cfg.target.name)


def subset(bundle: DatasetBundle, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of the dataset rows `idx`."""
    t = torch.tensor(np.asarray(idx), dtype=torch.long)
    return bundle.x[t], bundle.y[t]


def eval_sets(bundle: DatasetBundle, members, nonmembers, n_eval: int | None):
    """Equal numbers of members and non-members (the first n of each, the split is random)."""
    n = min(len(members), len(nonmembers), n_eval or len(members))
    return {"members": subset(bundle, members[:n]), "nonmembers": subset(bundle, nonmembers[:n])}


def target_metrics(cfg: DictConfig, pred: Predictor) -> dict[str, float]:
    """CCS'19 target metrics: benign and PGD-20 (step 2.5*eps/20, no random start) accuracy;
    for targets with a verifier also the verified accuracy at that eps."""
    args = AttackPGD(eps=eval_eps(cfg)).args()
    out = {
        keys.target("train_acc"): pred.accuracy("members"),
        keys.target("test_acc"): pred.accuracy("nonmembers"),
        keys.target("adv_train_acc"): pred.accuracy("members", **args),
        keys.target("adv_test_acc"): pred.accuracy("nonmembers", **args),
        keys.target("eval_eps"): args["eps"],
    }
    if getattr(pred.model, "verifiable", False):
        out[keys.target("ver_train_acc")] = pred.verified_accuracy("members", args["eps"])
        out[keys.target("ver_test_acc")] = pred.verified_accuracy("nonmembers", args["eps"])
    return out


def load_state(path) -> dict:
    """Load a checkpoint written by `Run.log_torch_state` (weights only, no pickled code)."""
    return torch.load(path, map_location="cpu", weights_only=True)


__all__ = [
    "build_data",
    "check_trainer",
    "eval_sets",
    "fit_target",
    "label_of",
    "load_state",
    "make_net",
    "make_trainer",
    "subset",
    "target_metrics",
    "with_epochs",
]
