"""Datasets from the user's files (lit_mia/data/files.py): `image_folder` and `tensors`.

Each is checked against the pixels it was written with, goes through the same split rules as
the built-in sets, and refuses bad input with a one-line ConfigError naming data.root."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lit_mia.data.datasets import DATASETS, load_dataset
from lit_mia.data.splits import make_split
from lit_mia.errors import ConfigError


def write_images(root, n_per_class=5, size=(8, 6), mode="L", seed=0):
    """root/<class>/<i>.png with random pixels; returns {class: [uint8 arrays]} in file order."""
    rng = np.random.default_rng(seed)
    out = {}
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        out[c] = []
        for i in range(n_per_class):
            shape = (size[1], size[0]) + (() if mode == "L" else (3,))
            a = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(a, mode=mode).save(root / c / f"{i:02d}.png")
            out[c].append(a)
    return out


def test_registered():
    assert {"image_folder", "tensors"} <= set(DATASETS)


def test_image_folder_grayscale_pixels_labels_and_split(tmp_path):
    arrays = write_images(tmp_path / "imgs")
    b = load_dataset("image_folder", root=str(tmp_path / "imgs"))
    assert b.x.shape == (10, 1, 6, 8)
    assert b.n_classes == 2
    assert b.y.tolist() == [0] * 5 + [1] * 5  # classes = sorted folder names
    want = np.stack(arrays["cat"] + arrays["dog"])[:, None] / 255.0
    np.testing.assert_allclose(b.x.numpy(), want, atol=1e-6)
    assert b.mean[0] == pytest.approx(want.mean(), abs=1e-6)
    assert b.std[0] == pytest.approx(want.std(), abs=1e-6)
    s = make_split(len(b), n_members=4, n_nonmembers=4, n_shadow=2, seed=3, dataset=b.name)
    assert len(np.intersect1d(s.members, s.nonmembers)) == 0
    assert s == make_split(10, n_members=4, n_nonmembers=4, n_shadow=2, seed=3)


def test_image_folder_rgb(tmp_path):
    arrays = write_images(tmp_path / "rgb", n_per_class=2, mode="RGB")
    b = load_dataset("image_folder", root=str(tmp_path / "rgb"))
    assert b.x.shape == (4, 3, 6, 8)
    assert len(b.mean) == 3
    np.testing.assert_allclose(b.x[0].permute(1, 2, 0).numpy(), arrays["cat"][0] / 255.0, atol=1e-6)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing", ["data.root", "is not a folder"]),
        ("empty", ["data.root", "no images"]),
        ("no-image-files", ["data.root", "no images"]),
        ("mixed-sizes", ["one size", "6x8", "7x8"]),
    ],
)
def test_image_folder_errors(tmp_path, case, words):
    root = tmp_path / "r"
    if case == "empty":
        root.mkdir()
    elif case == "no-image-files":
        (root / "a").mkdir(parents=True)
        (root / "a" / "notes.txt").write_text("no image here")
    elif case == "mixed-sizes":
        write_images(root, n_per_class=1)
        Image.new("L", (8, 7)).save(root / "dog" / "zz.png")
    with pytest.raises(ConfigError) as e:
        load_dataset("image_folder", root=str(root))
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert all(w in msg for w in words), msg


@pytest.mark.parametrize("suffix", [".npz", ".pt"])
def test_tensors_uint8_and_float(tmp_path, suffix):
    rng = np.random.default_rng(0)
    x8 = rng.integers(0, 256, size=(12, 3, 4, 5), dtype=np.uint8)
    y = np.arange(12) % 3
    path = tmp_path / f"d{suffix}"
    if suffix == ".npz":
        np.savez(path, x=x8, y=y)
    else:
        torch.save({"x": torch.from_numpy(x8), "y": torch.from_numpy(y)}, path)
    b = load_dataset("tensors", root=str(path))
    assert b.x.shape == (12, 3, 4, 5)
    assert b.n_classes == 3
    assert b.y.dtype == torch.int64
    np.testing.assert_allclose(b.x.numpy(), x8 / 255.0, atol=1e-6)
    np.testing.assert_allclose(b.mean, (x8 / 255.0).mean(axis=(0, 2, 3)), atol=1e-6)
    f = tmp_path / "f.npz"  # float [N, H, W] in [0, 1]: one channel added
    np.savez(f, x=(x8[:, 0] / 255.0).astype(np.float32), y=y)
    assert load_dataset("tensors", root=str(f)).x.shape == (12, 1, 4, 5)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["data.root", "is not a file"]),
        ({"x": np.zeros((3, 1, 2, 2))}, ["lacks ['y']"]),
        ({"x": np.full((3, 1, 2, 2), 2.0), "y": np.zeros(3, int)}, ["[0, 1]", "[2, 2]"]),
        ({"x": np.zeros((3, 1, 2, 2)), "y": np.zeros(4, int)}, ["x (3, 1, 2, 2), y (4,)"]),
        ({"x": np.zeros((3, 1, 2, 2)), "y": np.array([0, -1, 1])}, ["labels >= 0"]),
        ({"x": np.zeros((3, 1, 2, 2)), "y": np.zeros(3)}, ["integer labels"]),
    ],
)
def test_tensors_errors(tmp_path, content, words):
    path = tmp_path / "bad.npz"
    if content is not None:
        np.savez(path, **content)
    with pytest.raises(ConfigError) as e:
        load_dataset("tensors", root=str(path))
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert all(w in msg for w in words), msg


def test_tensors_pt_refuses_pickled_code(tmp_path):
    path = tmp_path / "code.pt"
    torch.save({"x": torch.zeros(2, 1, 2, 2), "y": torch.zeros(2), "f": np.dtype}, path)
    with pytest.raises(ConfigError, match=r"weights|cannot read"):
        load_dataset("tensors", root=str(path))
