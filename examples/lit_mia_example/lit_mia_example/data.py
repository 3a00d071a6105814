"""`blobs`: a dataset plug-in, a loader `(root, download) -> DatasetBundle`.

1,200 noisy 1x6x6 images in 4 classes (300 each), offline and deterministic: each class is a
fixed random prototype in [0.25, 0.75], each image its prototype plus Gaussian noise (sd 0.35)
clipped to [0, 1]. The classes overlap, so a model that fits its training set memorises it:
a small leaking data set for demos and tests.
"""

from __future__ import annotations

import numpy as np
import torch


def blobs(root: str = "data_root", download: bool = False):
    from lit_mia.data.datasets import DatasetBundle  # lazily: lit_mia is loading its registry

    rng = np.random.default_rng(0)
    n_classes, per_class = 4, 300
    protos = rng.uniform(0.25, 0.75, size=(n_classes, 1, 6, 6))
    y = np.repeat(np.arange(n_classes), per_class)
    x = np.clip(protos[y] + rng.normal(0, 0.35, size=(len(y), 1, 6, 6)), 0, 1)
    xt = torch.as_tensor(x, dtype=torch.float32)
    mean = tuple(xt.double().mean(dim=(0, 2, 3)).tolist())
    std = tuple(xt.double().std(dim=(0, 2, 3), correction=0).tolist())
    return DatasetBundle("blobs", xt, torch.as_tensor(y), n_classes, mean, std)
