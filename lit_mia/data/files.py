"""Datasets read from the user's files (offline), for auditing models trained elsewhere.

Both readers return `(x float32 [N, C, H, W] in [0, 1], y int64 [N], n_classes)`; datasets.py
turns them into a `DatasetBundle` (per-channel mean/std of the pool) registered as
`image_folder` and `tensors`, so they take the same split rules as every other data set
(`splits.make_split`: one seeded permutation cut into members / validation / non-members /
shadow / probe). `data.root` is the folder or the file.

image_folder  torchvision `ImageFolder` layout: root/<class>/<image>. Classes are the sorted
              sub-folder names (label = position); every image must have the same size. All
              grayscale ("L", "1") -> C = 1, else RGB -> C = 3; pixels uint8 / 255.
tensors       a `.npz` (numpy.load) or `.pt` (torch.load, weights_only=True: a dict of
              tensors) holding `x` and `y`: x [N, C, H, W] or [N, H, W] (C = 1), uint8 (/255)
              or float already in [0, 1]; y [N] non-negative integer labels; n_classes =
              max(y) + 1.

Bad files are one-line ConfigErrors naming `data.root`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lit_mia.errors import ConfigError

Arrays = tuple[torch.Tensor, torch.Tensor, int]
GRAY_MODES = ("L", "1")


def read_image_folder(root: str) -> Arrays:
    """Every image under root/<class>/ (torchvision ImageFolder's extensions)."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    folder = Path(root)
    if not folder.is_dir():
        raise ConfigError(
            f"data.root {root!r} is not a folder (image_folder reads root/<class>/<image>)"
        )
    try:
        ds = ImageFolder(str(folder), loader=lambda p: p)  # paths only; read below
    except (FileNotFoundError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"data.root {root!r} holds no images for image_folder: {first}") from None
    images = []
    for path, _ in ds.samples:
        try:
            with Image.open(path) as im:
                im.load()
                images.append(im.copy())
        except OSError as e:
            raise ConfigError(f"data.root {root!r}: cannot read image {path}: {e}") from None
    sizes = {im.size for im in images}
    if len(sizes) > 1:
        (w0, h0), (w1, h1) = sorted(sizes)[:2]
        raise ConfigError(
            f"data.root {root!r}: image_folder needs images of one size, found {h0}x{w0} and "
            f"{h1}x{w1} (HxW); resize them first"
        )
    gray = all(im.mode in GRAY_MODES for im in images)
    arrays = [np.asarray(im.convert("L" if gray else "RGB"), dtype=np.uint8) for im in images]
    u8 = torch.from_numpy(np.stack(arrays))  # [N, H, W] or [N, H, W, 3]
    u8 = u8.unsqueeze(1) if gray else u8.permute(0, 3, 1, 2)
    y = torch.as_tensor(ds.targets, dtype=torch.int64)
    return u8.float().div_(255.0).contiguous(), y, len(ds.classes)


def _load_file(path: Path, root: str) -> dict:
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise ConfigError(f"data.root {root!r}: cannot read .npz: {e}") from None
    if path.suffix == ".pt":
        from lit_mia.weights_file import load_weights

        data = load_weights(path, f"data.root {root!r}: tensors file")
        if not isinstance(data, dict):
            raise ConfigError(f"data.root {root!r}: .pt must hold a dict with x and y")
        return data
    raise ConfigError(f"data.root {root!r}: tensors reads a .npz or .pt file, got {path.suffix!r}")


def read_tensors(root: str) -> Arrays:
    """x and y from a .npz or .pt file (see the module docstring)."""
    path = Path(root)
    if not path.is_file():
        raise ConfigError(f"data.root {root!r} is not a file (tensors reads a .npz or .pt file)")
    data = _load_file(path, root)
    missing = [k for k in ("x", "y") if k not in data]
    if missing:
        raise ConfigError(f"data.root {root!r} lacks {missing}; it holds {sorted(data)}")
    x, y = torch.as_tensor(np.asarray(data["x"])), torch.as_tensor(np.asarray(data["y"]))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ConfigError(
            f"data.root {root!r}: x must be [N, C, H, W] or [N, H, W] and y [N], N >= 1; got "
            f"x {tuple(x.shape)}, y {tuple(y.shape)}"
        )
    if y.is_floating_point() or y.dtype == torch.bool or int(y.min()) < 0:
        raise ConfigError(f"data.root {root!r}: y must hold integer labels >= 0, got {y.dtype}")
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    elif x.is_floating_point():
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1 or not np.isfinite([lo, hi]).all():
            raise ConfigError(
                f"data.root {root!r}: float x must lie in [0, 1] (pixels; normalisation is the "
                f"net's first layer), got [{lo:g}, {hi:g}]"
            )
        x = x.float()
    else:
        raise ConfigError(f"data.root {root!r}: x must be uint8 or float, got {x.dtype}")
    return x.contiguous(), y.to(torch.int64).contiguous(), int(y.max()) + 1


__all__ = ["read_image_folder", "read_tensors"]
