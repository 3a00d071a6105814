"""Label decoders of Updates-Leak as LightningModules (Salem et al. USENIX Security'20).

- `LabelInference` (A_LI, §4.1, appendix C): encoder -> FC(n_classes) -> softmax; CE loss,
  Adam. Input delta [B, d], target label [B]; forward returns logits [B, n_classes].
- `LabelDistribution` (A_LDE, §5; the released code: MLP 1000-256-128-10, LeakyReLU, dropout
  0.5, Adam 1e-3): encoder -> FC(n_classes) -> softmax histogram; loss KL(true || predicted)
  (`F.kl_div(log_pred, true, reduction="batchmean")`). Target histogram [B, n_classes];
  forward returns log-probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.updates_leak.encoder import Encoder


class _EncoderHead(pl.LightningModule):
    def __init__(
        self,
        d_in: int,
        n_classes: int,
        hidden: Sequence[int],
        dropout: float,
        lr: float,
    ) -> None:
        super().__init__()
        self.encoder = Encoder(d_in, hidden, dropout)
        self.head = nn.Linear(self.encoder.out_dim, n_classes)
        self.lr = lr

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class LabelInference(_EncoderHead):
    """A_LI: delta -> label logits."""

    def forward(self, delta: Tensor) -> Tensor:
        return self.head(self.encoder(delta))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        delta, y = batch
        logits = self(delta)
        loss = F.cross_entropy(logits, y)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        self.log("train/acc", (logits.argmax(-1) == y).float().mean(), on_step=False, on_epoch=True)
        return loss


class LabelDistribution(_EncoderHead):
    """A_LDE: delta -> log label histogram."""

    def forward(self, delta: Tensor) -> Tensor:
        return F.log_softmax(self.head(self.encoder(delta)), dim=-1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        delta, hist = batch
        loss = F.kl_div(self(delta), hist, reduction="batchmean")
        self.log("train/kl", loss, on_step=False, on_epoch=True)
        return loss


__all__ = ["LabelDistribution", "LabelInference"]
