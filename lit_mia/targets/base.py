"""The shared LightningModule of every target: optimiser, logging, per-epoch robustness check.

A regime subclasses `TargetModule` and overrides `training_loss(x, y, idx) -> (loss, logits)`.
`idx` holds the global dataset indices of the batch (so a regime can treat a fixed subset of
the training set differently, e.g. CCS'19 mixed PGD). Logged per epoch: `train/loss`,
`train/acc` and, on the target validation set (never non-members), `val/loss`, `val/acc`,
`val/adv_acc` (PGD at the evaluation eps with `val_adv_steps` steps). Run the Trainer with
`inference_mode=False` so PGD can take input gradients inside validation.
"""

from __future__ import annotations

from typing import ClassVar

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.perturb.pgd import pgd


class TargetModule(pl.LightningModule):
    """Base target: holds `net` (raw logits, Normalize first) and the regime's settings."""

    adversarial: ClassVar[bool] = False

    def __init__(
        self,
        net: nn.Module,
        *,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eval_eps: float = 0.1,
        val_adv_steps: int = 10,
        train_idx: Tensor | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.net = net
        self.optimizer_name = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.eval_eps = eval_eps
        self.val_adv_steps = val_adv_steps
        self.seed = seed
        self._train_sums: Tensor | None = None  # [2]: epoch sums of B * loss, correct
        self._train_n = 0  # samples seen this epoch (this rank)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_loss(self, x: Tensor, y: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Natural loss (CCS'19 eq. 1): mean CE on benign inputs. Returns (loss, logits)."""
        logits = self.net(x)
        return F.cross_entropy(logits, y), logits

    def on_train_epoch_start(self) -> None:
        self._train_sums, self._train_n = None, 0

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y, idx = batch
        loss, logits = self.training_loss(x, y, idx)
        # Epoch sums, logged once in on_train_epoch_end: two self.log calls a step cost ~1 ms
        # of CPU (bench/bench_training.py), 5-10% of a LeNet step. Same weighted epoch means.
        with torch.no_grad():
            correct = (logits.argmax(1) == y).sum()
            sums = torch.stack((loss.detach().float() * y.numel(), correct.float()))  # [2]
        self._train_sums = sums if self._train_sums is None else self._train_sums + sums
        self._train_n += y.numel()
        return loss

    def on_train_epoch_end(self) -> None:
        if self._train_sums is None:
            return
        local = torch.cat((self._train_sums, self._train_sums.new_tensor([self._train_n])))
        loss_sum, correct, n = self.trainer.strategy.reduce(local, reduce_op="sum")  # all ranks
        self.log("train/loss", loss_sum / n, on_step=False, on_epoch=True, sync_dist=True)
        self.log(
            "train/acc", correct / n, on_step=False, on_epoch=True, sync_dist=True, prog_bar=True
        )
        self._train_sums, self._train_n = None, 0

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        x, y, _ = batch
        logits = self.net(x)
        self.log("val/loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log("val/acc", (logits.argmax(1) == y).float().mean(), sync_dist=True, prog_bar=True)
        if self.eval_eps > 0 and self.val_adv_steps > 0:
            steps = self.val_adv_steps
            x_adv = pgd(self.net, x, y, self.eval_eps, steps, 2.5 * self.eval_eps / steps)
            with torch.no_grad():
                adv_acc = (self.net(x_adv).argmax(1) == y).float().mean()
            self.log("val/adv_acc", adv_acc, sync_dist=True, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = self.net.parameters()
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(
                params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
