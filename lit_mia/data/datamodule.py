"""Data loaders over in-memory DatasetBundles, and the target's LightningDataModule.

Batches are triples (x [B, C, H, W] float32, y [B] int64, idx [B] int64), where idx are global
indices into the bundle, so attacks and split artifacts can name every sample.

Fast path: `IndexedDataset.__getitems__` gathers a whole batch with one tensor index instead of
B `__getitem__` calls plus a stack; the loaders pass `collate_fn=collate_batch`, which returns
that batch unchanged. Build loaders with `loader()` or `MembershipDataModule`; a hand-made
DataLoader over an IndexedDataset must pass `collate_fn=collate_batch` too.

The DataLoaders are plain (`shuffle=True` + seeded generator, or `shuffle=False`), so Lightning
can swap in a DistributedSampler under DDP (`use_distributed_sampler=True`, the default).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from lit_mia.data.datasets import DatasetBundle

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # x [B,C,H,W], y [B], idx [B]


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


def loader(
    bundle: DatasetBundle,
    idx: np.ndarray | Sequence[int],
    batch_size: int = 512,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
) -> DataLoader:
    """DataLoader over bundle[idx] (evaluation by default: fixed order, no shuffling)."""
    return DataLoader(
        IndexedDataset(bundle, idx),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        collate_fn=collate_batch,
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
    ) -> None:
        super().__init__()
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
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_idx.size == 0:
            return []
        return loader(self.bundle, self.val_idx, self.batch_size, num_workers=self.num_workers)
