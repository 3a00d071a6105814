"""Label decoders of Updates-Leak as LightningModules (Salem et al. USENIX Security'20).

- `LabelInference` (A_LI, §4.1, appendix C): encoder -> FC(n_classes) -> softmax; CE loss,
  Adam. Input delta [B, d], target label [B]; forward returns logits [B, n_classes].
- `LabelDistribution` (A_LDE, §5; the released code: MLP 1000-256-128-10, LeakyReLU, dropout
  0.5, Adam 1e-3): encoder -> FC(n_classes) -> softmax histogram; loss KL(true || predicted)
  (`F.kl_div(log_pred, true, reduction="batchmean")`). Target histogram [B, n_classes];
  forward returns log-probabilities.

Every decoder's `validation_step` logs its training loss on held-out shadow updates as
`val/loss` (fitting.KeepBest selects the epoch on it: context.fit_attack_model).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.attacks.update_leakage.encoder import Encoder


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

    def losses(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        """{"loss": the training loss, other per-batch metrics}."""
        raise NotImplementedError

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        out = self.losses(batch)
        self.log_dict({f"train/{k}": v for k, v in out.items()}, on_step=False, on_epoch=True)
        return out["loss"]

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val/loss", self.losses(batch)["loss"], on_step=False, on_epoch=True)


class LabelInference(_EncoderHead):
    """A_LI: delta -> label logits."""

    def forward(self, delta: Tensor) -> Tensor:
        return self.head(self.encoder(delta))

    def losses(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        delta, y = batch
        logits = self(delta)
        acc = (logits.argmax(-1) == y).float().mean()
        return {"loss": F.cross_entropy(logits, y), "acc": acc}


class LabelDistribution(_EncoderHead):
    """A_LDE: delta -> log label histogram."""

    def forward(self, delta: Tensor) -> Tensor:
        return F.log_softmax(self.head(self.encoder(delta)), dim=-1)

    def losses(self, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        delta, hist = batch
        return {"loss": F.kl_div(self(delta), hist, reduction="batchmean")}


__all__ = ["LabelDistribution", "LabelInference"]
