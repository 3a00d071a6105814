"""A_SSR, single-sample reconstruction (Salem et al. USENIX Security'20, §4.2, appendix D).

`Autoencoder`: the MNIST autoencoder of Table 2, trained on the adversary's shadow data with
MSE on images scaled to [-1, 1] (tanh output), Adam:

    encoder  [B,1,28,28] -conv3(16), stride 3, pad 1-> [B,16,10,10] -max2-> [B,16,5,5]
             -conv3(8), stride 2, pad 1-> [B,8,3,3] -max2, stride 1-> [B,8,2,2] -flatten-> 32
             -FC15 (dropout)-> -FC10-> mu_AE [B,10]                     (ReLU on every layer)
    decoder  mu_AE -FC15-> -FC32 (dropout)-> [B,8,2,2] -convT3(16), stride 2-> [B,16,5,5]
             -convT5(8), stride 3, pad 1-> [B,8,15,15] -convT2(1), stride 2, pad 1-> [B,1,28,28]
             (ReLU, tanh on the output)

Table 2 gives kernel sizes, filters and units; strides and paddings are not in the paper: these
are those of the PyTorch convolutional autoencoder the table's numbers match (1x28x28 -> 8x2x2
-> 1x28x28). Only 1x28x28 data sets have this AE (validation.AE_FOR_DATASET).

`SampleReconstruction`: the attack, delta -> Encoder (appendix B) -> mu [B,64] -> FC(64 -> 10)
bridge -> a copy of the trained AE decoder -> image in [-1, 1]; all of it fine-tuned end to end
with MSE, Adam (`updates.ssr.decoder: autoencoder`).

`MlpReconstruction` (`updates.ssr.decoder: mlp`, the default): delta -> FC hidden (LeakyReLU,
dropout) -> FC n_pixels -> tanh, trained with MSE, Adam, no autoencoder in the way. Chosen by
measurement (issue 11; mnist5k LeNet, 2,400 shadow updates over 5 shadow base models, 500
target updates, epochs chosen on the held-out shadow base): the Table 2 decoder behind the
encoder reached 0.0535 MSE on the target side, 2.4% below the true-class mean image (0.0548);
an MLP 256-256 with dropout 0.5 reached 0.0490 (10.6% below). The AE's 10-unit bottleneck
holds little more than the class; the MLP maps the delta to pixels directly.
Both log `val/loss` (MSE on held-out shadow updates) for the epoch selection of
context.fit_attack_model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.attacks.update_leakage.encoder import Encoder

MU_AE = 10  # Table 2 MNIST: f2


def mnist_ae_encoder(dropout: float = 0.2) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 8, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2, 1),
        nn.Flatten(), nn.Linear(32, 15), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(15, MU_AE), nn.ReLU(),
    )  # fmt: skip


def mnist_ae_decoder(dropout: float = 0.2) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(MU_AE, 15), nn.ReLU(), nn.Linear(15, 32), nn.ReLU(), nn.Dropout(dropout),
        nn.Unflatten(1, (8, 2, 2)),
        nn.ConvTranspose2d(8, 16, 3, stride=2), nn.ReLU(),
        nn.ConvTranspose2d(16, 8, 5, stride=3, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(8, 1, 2, stride=2, padding=1), nn.Tanh(),
    )  # fmt: skip


class Autoencoder(pl.LightningModule):
    """Images [B,1,28,28] in [-1, 1] -> reconstructions in [-1, 1]; MSE, Adam."""

    def __init__(self, lr: float = 1e-3, dropout: float = 0.2) -> None:
        super().__init__()
        self.encoder = mnist_ae_encoder(dropout)
        self.decoder = mnist_ae_decoder(dropout)
        self.lr = lr

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))

    def training_step(self, batch: tuple[Tensor], batch_idx: int) -> Tensor:
        (x,) = batch
        loss = F.mse_loss(self(x), x)
        self.log("train/mse", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class _Reconstruction(pl.LightningModule):
    """What both A_SSR decoders share: MSE to the image, `val/loss` on held-out updates, Adam
    at `self.lr`; subclasses build the layers and `forward`."""

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        delta, x = batch
        loss = F.mse_loss(self(delta), x)
        self.log("train/mse", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        delta, x = batch
        self.log("val/loss", F.mse_loss(self(delta), x), on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class SampleReconstruction(_Reconstruction):
    """A_SSR: delta [B, d] -> image [B,1,28,28] in [-1, 1]."""

    def __init__(
        self,
        d_in: int,
        decoder: nn.Module,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.2,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        self.encoder = Encoder(d_in, hidden, dropout)
        self.bridge = nn.Linear(self.encoder.out_dim, MU_AE)
        self.decoder = copy.deepcopy(decoder)  # transferred from the trained AE
        self.lr = lr

    def forward(self, delta: Tensor) -> Tensor:
        return self.decoder(self.bridge(self.encoder(delta)))


class MlpReconstruction(_Reconstruction):
    """A_SSR with a direct decoder: delta [B, d] -> tanh(FC(Encoder(delta))), the image
    [B, *shape] in [-1, 1]."""

    def __init__(
        self,
        d_in: int,
        shape: Sequence[int],
        hidden: Sequence[int] = (256, 256),
        dropout: float = 0.5,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        self.encoder = Encoder(d_in, hidden, dropout)
        self.shape = tuple(int(s) for s in shape)
        self.head = nn.Linear(self.encoder.out_dim, math.prod(self.shape))
        self.lr = lr

    def forward(self, delta: Tensor) -> Tensor:
        return torch.tanh(self.head(self.encoder(delta))).view(len(delta), *self.shape)


__all__ = ["Autoencoder", "MlpReconstruction", "SampleReconstruction", "mnist_ae_decoder"]
__all__ += ["mnist_ae_encoder"]
