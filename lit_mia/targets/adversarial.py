"""PGD adversarial training (Madry et al. ICLR 2018; Song, Shokri, Mittal CCS'19 §2.1, eq. 8).

Loss: CE(F(x_adv), y) with x_adv from L_inf PGD (random start, `steps` steps of `step_size`)
inside the eps-ball around x, i.e. eq. 8 with alpha = 0. Defaults (`PGDSettings`) are the
released code's Fashion-MNIST ones: eps 0.1, 8 steps, step 0.02, random start.

Mixed PGD (CCS'19 Table 5): `ratio` r in [0,1]. With `ratio_mode="fixed"` a subset of r*n
training points, chosen once from the seed, contributes the robust loss on its PGD examples
and the remaining points contribute the natural loss
(docs/reference/paper-defaults.md#robust-training). `ratio_mode="batch"`
instead perturbs a random fraction r of every batch (a separate experiment). Only the selected
rows are attacked, so r < 1 also costs proportionally less. Shapes: x [B,C,H,W], y [B], idx [B].
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.perturb.pgd import pgd
from lit_mia.targets.base import TargetModule
from lit_mia.targets.settings import RATIO_MODES, PGDSettings  # noqa: F401


class PGDTarget(TargetModule):
    Settings: ClassVar[type[PGDSettings]] = PGDSettings
    adversarial: ClassVar[bool] = True

    def __init__(
        self,
        net: nn.Module,
        settings: PGDSettings | None = None,
        *,
        train_idx: Tensor | None = None,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(net, settings, train_idx=train_idx, seed=seed, **kwargs)
        s = self.settings
        self.eps, self.steps, self.step_size = s.eps, s.steps, s.step_size
        self.random_start = s.random_start
        self.ratio, self.ratio_mode = s.ratio, s.ratio_mode
        self._gen: torch.Generator | None = None
        robust = torch.empty(0, dtype=torch.long)
        if self.ratio_mode == "fixed" and train_idx is not None and 0 < self.ratio < 1:
            g = torch.Generator().manual_seed(seed)
            perm = torch.as_tensor(train_idx, dtype=torch.long)[
                torch.randperm(len(train_idx), generator=g)
            ]
            robust = perm[: round(self.ratio * len(train_idx))].sort().values
        self.register_buffer("robust_idx", robust, persistent=False)

    def _robust_mask(self, idx: Tensor) -> Tensor:
        """[B] bool: which rows of the batch take the robust loss."""
        if self.ratio >= 1:
            return torch.ones_like(idx, dtype=torch.bool)
        if self.ratio <= 0:
            return torch.zeros_like(idx, dtype=torch.bool)
        if self.ratio_mode == "batch":
            return (
                torch.rand(idx.shape, generator=self._generator(idx.device), device=idx.device)
                < self.ratio
            )
        return torch.isin(idx, self.robust_idx)

    def _generator(self, device: torch.device) -> torch.Generator:
        if self._gen is None or self._gen.device != device:
            self._gen = torch.Generator(device=device).manual_seed(self.seed + self.global_rank)
        return self._gen

    def training_loss(self, x: Tensor, y: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        if self.eps > 0 and self.steps > 0 and self.ratio > 0:
            x = self.step_adversarial(x, y, idx)  # = adversarial_examples, once per step
        logits = self.net(x)
        return F.cross_entropy(logits, y), logits

    def adversarial_examples(self, x: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        """PGD examples for the robust rows of the batch, benign inputs for the others."""

        def attack(xs: Tensor, ys: Tensor) -> Tensor:
            return pgd(
                self.net,
                xs,
                ys,
                self.eps,
                self.steps,
                self.step_size,
                random_start=self.random_start,
                generator=self._generator(x.device),
            )

        if self.ratio >= 1:  # every row robust: no masking, no host-device sync
            return attack(x, y)
        mask = self._robust_mask(idx)
        if not bool(mask.any()):
            return x
        x = x.clone()
        x[mask] = attack(x[mask], y[mask])
        return x
