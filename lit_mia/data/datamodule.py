"""Data loaders over in-memory DatasetBundles, and the target's LightningDataModule.

Batches are triples (x [B, C, H, W] float32, y [B] int64, idx [B] int64), where idx are global
indices into the bundle, so attacks and split artifacts can name every sample.

Fast path: `IndexedDataset.__getitems__` gathers a whole batch with one tensor index instead of
B `__getitem__` calls plus a stack; the loaders pass `collate_fn=collate_batch`, which returns
that batch unchanged. Build loaders with `loader()` or `MembershipDataModule`; a hand-made
DataLoader over an IndexedDataset must pass `collate_fn=collate_batch` too.

The DataLoaders are plain (`shuffle=True` + seeded generator, or `shuffle=False`), so Lightning
can swap in a DistributedSampler under DDP (`use_distributed_sampler=True`, the default).

Data augmentation (`data.augment`, a countermeasure of Li & Zhang CCS'21 §6) transforms training
batches only, inside the train loader's collate (`AugmentCollate`), in [0,1] pixel space:
  none        the default; the loader keeps the plain `collate_batch` (no extra work)
  shift       random translation by up to max(1, H // 8) pixels each way (4 on 32x32, 3 on
              28x28, 1 on 8x8), zero fill: CIFAR's pad-4-random-crop, scaled to the image size
  flip_shift  shift, then a horizontal flip with probability 1/2 (not for digit data)
Randomness comes from a torch.Generator seeded from the run seed (in worker processes from the
worker's seed, itself drawn from the loader's seeded generator): same seed, same batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from lit_mia.data.datasets import DatasetBundle
from lit_mia.errors import ConfigError

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # x [B,C,H,W], y [B], idx [B]
AUGMENTATIONS = ("none", "shift", "flip_shift")


class IndexedDataset(Dataset):
    """The samples `idx` of `bundle`; item i is (x [C,H,W], y scalar, global index scalar)."""

    def __init__(self, bundle: DatasetBundle, idx: np.ndarray | Sequence[int] | torch.Tensor):
        self.bundle = bundle
        idx = np.array(idx, dtype=np.int64).reshape(-1)
        self.idx = torch.as_tensor(idx).to(bundle.x.device)  # global indices, on x's device
        if self.idx.numel() and (self.idx.min() < 0 or self.idx.max() >= len(bundle)):
            raise IndexError(f"indices outside [0, {len(bundle)}) for {bundle.name}")

    def __len__(self) -> int:
        return int(self.idx.numel())

    def __getitem__(self, i: int) -> Batch:
        g = self.idx[i]
        return self.bundle.x[g], self.bundle.y[g], g

    def __getitems__(self, positions: Sequence[int]) -> Batch:
        pos = torch.as_tensor(positions, dtype=torch.int64, device=self.idx.device)
        g = self.idx.index_select(0, pos)
        return self.bundle.x.index_select(0, g), self.bundle.y.index_select(0, g), g


def collate_batch(data: Batch | list[Batch]) -> Batch:
    """Collate for IndexedDataset: a batch from `__getitems__` passes through unchanged."""
    if isinstance(data, tuple):
        return data
    return torch.utils.data.default_collate(data)


def augment_batch(x: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Randomly shifted (and for flip_shift flipped) copy of x [B,C,H,W]; values stay in x's
    range (zero fill). `mode` as in AUGMENTATIONS; "none" returns x."""
    if mode == "none":
        return x
    if mode not in AUGMENTATIONS:
        raise ConfigError(f"data.augment must be one of {', '.join(AUGMENTATIONS)}, got {mode!r}")
    b, c, h, w = x.shape
    s = max(1, h // 8)
    dev = generator.device
    dy, dx = (torch.randint(0, 2 * s + 1, (2, b), generator=generator, device=dev)).to(x.device)
    padded = torch.nn.functional.pad(x, (s, s, s, s))  # [B, C, H+2s, W+2s], zeros
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [B,1,H,1]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [B,1,1,W]
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[bi, ci, rows, cols]  # [B, C, H, W]: crop at offset (dy, dx)
    if mode == "flip_shift":
        flip = torch.rand(b, generator=generator, device=dev).to(x.device) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out


class AugmentCollate:
    """Collate of augmented training loaders: `collate_batch`, then `augment_batch` on x."""

    def __init__(self, mode: str, seed: int) -> None:
        self.mode, self.seed = mode, seed
        self._gen: torch.Generator | None = None

    def __call__(self, data: Batch | list[Batch]) -> Batch:
        x, y, idx = collate_batch(data)
        if self._gen is None:
            info = torch.utils.data.get_worker_info()  # per worker: its own seeded stream
            seed = self.seed if info is None else info.seed % 2**63
            self._gen = torch.Generator().manual_seed(seed)
        return augment_batch(x, self.mode, self._gen), y, idx


def loader(
    bundle: DatasetBundle,
    idx: np.ndarray | Sequence[int],
    batch_size: int = 512,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    augment: str = "none",
) -> DataLoader:
    """DataLoader over bundle[idx] (evaluation by default: fixed order, no shuffling).

    `augment` != "none" transforms every batch (training loaders only, see AugmentCollate).
    """
    return DataLoader(
        IndexedDataset(bundle, idx),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        collate_fn=collate_batch if augment == "none" else AugmentCollate(augment, seed),
        drop_last=False,
    )


class MembershipDataModule(pl.LightningDataModule):
    """Train on `train_idx` (the members), validate on `val_idx` (never the non-members).

    `train_dataloader()` shuffles with a torch.Generator seeded from `seed`: same seed, same
    order (each call starts afresh; later epochs continue the generator). With no validation
    indices `val_dataloader()` returns [], which Lightning 2.x treats as "no validation"
    (pass `limit_val_batches=0` to the Trainer as well to make it explicit).
    """

    def __init__(
        self,
        bundle: DatasetBundle,
        train_idx: np.ndarray | Sequence[int],
        val_idx: np.ndarray | Sequence[int] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        augment: str = "none",
    ) -> None:
        super().__init__()
        if augment not in AUGMENTATIONS:
            raise ConfigError(
                f"data.augment must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}"
            )
        self.augment = augment
        self.bundle = bundle
        self.train_idx = np.asarray(train_idx, dtype=np.int64)
        self.val_idx = np.asarray([] if val_idx is None else val_idx, dtype=np.int64)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        return loader(
            self.bundle,
            self.train_idx,
            self.batch_size,
            shuffle=True,
            seed=self.seed,
            num_workers=self.num_workers,
            augment=self.augment,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_idx.size == 0:
            return []
        return loader(self.bundle, self.val_idx, self.batch_size, num_workers=self.num_workers)
