"""`augmentation` (Choquette-Choo, Tramer, Carlini, Papernot, ICML 2021, "Label-Only Membership
Inference Attacks"): the cheap label-only attack, beyond Li & Zhang. A model fits its training
points so well that their label survives small augmentations more often than a non-member's.

Queries per candidate (all label-only): the input itself, its horizontal flip if
`attack.augmentation.flip`, every translation (i, j) with 1 <= |i| + |j| <= max_shift (zero fill,
Choquette-Choo's "translations by d pixels"), and `n_noise` Gaussian draws of std `noise_std`
clipped to [0, 1] (their noise-robustness attack). Score = fraction of those queries answered
with the true label (higher = member); thresholded like any score attack (their threshold
variant; the paper's combined attack trains a classifier on the same 0/1 vectors).
Defaults: `AugmentationSettings` (shifts up to 2 pixels, 10 noise draws of std 0.05;
docs/reference/paper-defaults.md#label-only-membership-inference).
"""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor

from lit_mia.attacks.label_only.oracle import LabelOracle
from lit_mia.attacks.label_only.settings import AugmentationSettings  # noqa: F401
from lit_mia.errors import ConfigError
from lit_mia.perturb.hopskipjump import sample_seeds
from lit_mia.perturb.transforms import translate
from lit_mia.predictor import Predictor


def shifts(max_shift: int) -> list[tuple[int, int]]:
    """All (di, dj) with 1 <= |di| + |dj| <= max_shift, in a fixed order."""
    r = int(max_shift)
    return [(i, j) for i in range(-r, r + 1) for j in range(-r, r + 1) if 1 <= abs(i) + abs(j) <= r]


def n_queries(s) -> int:
    """Queries per candidate for AugmentationSettings `s`."""
    return 1 + int(bool(s.flip)) + len(shifts(s.max_shift)) + int(s.n_noise)


def augmentation_scores(
    oracle, x: Tensor, y: Tensor, s, seeds: list[int], owners: np.ndarray | None = None
) -> np.ndarray:
    """Fraction of augmented queries labelled y, per sample of x [N, C, H, W]. Sample i's noise
    comes from its own generator seeded seeds[i] (independent of the batch)."""
    n = len(x)
    own = np.arange(n) if owners is None else np.asarray(owners)
    views = [x]
    if s.flip:
        views.append(x.flip(-1))
    views += [translate(x, i, j) for i, j in shifts(s.max_shift)]
    if s.n_noise:
        noise = torch.stack(
            [
                torch.randn(
                    (int(s.n_noise), *x.shape[1:]),
                    generator=torch.Generator().manual_seed(k),
                    dtype=x.dtype,
                )
                for k in seeds
            ]
        )  # [N, n_noise, C, H, W]
        noisy = (x[:, None] + float(s.noise_std) * noise.to(x.device)).clamp(0, 1)
        views += list(noisy.unbind(1))
    batch = torch.cat(views)  # [V * N, ...], view-major
    labels = oracle(batch, np.tile(own, len(views))).reshape(len(views), n)
    return (labels == y.reshape(1, -1).cpu()).double().mean(0).numpy()


def augmentation_scorer(pred: Predictor, name: str, cfg: DictConfig) -> tuple[np.ndarray, None]:
    """Scorer over set `name` of a Predictor: wraps `pred.model` in a LabelOracle at once."""
    s = cfg.attack.augmentation
    x, y = pred.sets[name]
    oracle = LabelOracle(pred.model, len(x), budget=n_queries(s), batch_size=cfg.attack.batch_size)
    salt = 0 if name == "members" else 1
    seeds = sample_seeds(int(cfg.seed) * 2 + salt, range(len(x)))
    return augmentation_scores(oracle, x, y, s, seeds), None


def check(cfg: DictConfig) -> None:
    s = cfg.attack.augmentation
    if s.max_shift < 0:
        raise ConfigError(f"attack.augmentation.max_shift must be >= 0, got {s.max_shift}")
    if s.n_noise < 0:
        raise ConfigError(f"attack.augmentation.n_noise must be >= 0, got {s.n_noise}")
    if s.n_noise > 0 and not s.noise_std > 0:
        raise ConfigError(
            f"attack.augmentation.noise_std must be > 0 when n_noise > 0, got {s.noise_std}"
        )
    if n_queries(s) < 2:
        raise ConfigError(
            "attack.augmentation needs at least one augmentation (flip, max_shift >= 1 or "
            "n_noise >= 1)"
        )


__all__ = ["augmentation_scores", "n_queries", "shifts", "translate"]
