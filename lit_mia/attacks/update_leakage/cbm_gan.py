"""A_MSR, multi-sample reconstruction with CBM-GAN (Salem et al. USENIX Security'20, §5,
appendix E MNIST; the released code's choices in docs/reference/paper-defaults.md#update-leakage).

    encoder      delta [B, d] -> mu [B, 64]                                (appendix B)
    generator    (mu, z) [B*G, 64 + z_dim] -> FC 2048 -> 2048 -> 2048 -> 784, tanh
    discriminator  sample [N, 784] -> FC 1024 -> 512 -> 256 -> 1 (sigmoid)
    hidden layers: BatchNorm then LeakyReLU(0.2); widths from `gen_hidden` / `disc_hidden`.

Training (Lightning's manual-optimisation GAN pattern: toggle one optimiser, backward, step,
zero_grad, untoggle; one discriminator then one generator step per batch of update sets, both
on the same generated samples): for each of the B update sets draw G noises z with the same
mu (appendix E: the generator's input is mu concatenated with z). Discriminator: BCE on the
real update-set samples (label 1) vs the generated ones (label 0). Generator + encoder, against
the just-updated (frozen) discriminator: non-saturating adversarial BCE + best_match_weight *
L_BM, with the paper's best-match loss L_BM = mean over the real samples x of the set of
min_g ||x - G(mu, z_g)||^2 (squared L2 over the pixels, evaluation.best_match_loss). With the
paper's plain squared L2 the best-match term dominates the adversarial one (~100 vs ~1): the
generator learns the set's samples, the discriminator only sharpens them.
The sigmoid of the discriminator is folded into BCE-with-logits for numerical stability.
Images are flattened and scaled to [-1, 1]. `history` keeps the per-epoch mean losses (the
training curve, plotted by multi.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.attacks.update_leakage.encoder import Encoder
from lit_mia.attacks.update_leakage.match_metrics import best_match_loss


def _mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, int(h)), nn.BatchNorm1d(int(h)), nn.LeakyReLU(0.2)]
        n_in = int(h)
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class CBMGAN(pl.LightningModule):
    """delta [B, d] -> G generated samples per set [B, G, n_pixels] in [-1, 1]."""

    def __init__(
        self,
        d_in: int,
        n_pixels: int = 784,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.2,
        gen_hidden: Sequence[int] = (2048, 2048, 2048),
        disc_hidden: Sequence[int] = (1024, 512, 256),
        z_dim: int = 64,
        n_gen: int = 30,
        best_match_weight: float = 1.0,
        lr: float = 2e-4,
        beta1: float = 0.5,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.encoder = Encoder(d_in, hidden, dropout)
        self.generator = nn.Sequential(
            _mlp(self.encoder.out_dim + z_dim, gen_hidden, n_pixels), nn.Tanh()
        )
        self.discriminator = _mlp(n_pixels, disc_hidden, 1)  # logits; sigmoid in the loss
        self.z_dim, self.n_gen, self.w = int(z_dim), int(n_gen), float(best_match_weight)
        self.lr, self.beta1 = lr, beta1
        self.history: dict[str, list[float]] = {}
        self._epoch: dict[str, list[float]] = {}

    def forward(self, delta: Tensor, n: int | None = None) -> Tensor:
        mu = self.encoder(delta)  # [B, 64]
        n = n or self.n_gen
        z = torch.randn(mu.shape[0], n, self.z_dim, device=mu.device)
        inp = torch.cat([mu[:, None].expand(-1, n, -1), z], dim=-1).flatten(0, 1)
        return self.generator(inp).view(mu.shape[0], n, -1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        delta, real = batch  # [B, d], [B, k, n_pixels] in [-1, 1]
        opt_g, opt_d = self.optimizers()
        # one generator forward serves both steps: built before any toggle, so its graph
        # reaches the encoder and generator parameters; the discriminator sees it detached
        fake = self(delta)  # [B, G, n_pixels]

        self.toggle_optimizer(opt_d)
        d_real = self.discriminator(real.flatten(0, 1))
        d_fake = self.discriminator(fake.detach().flatten(0, 1))
        loss_d = F.binary_cross_entropy_with_logits(
            d_real, torch.ones_like(d_real)
        ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        self.manual_backward(loss_d)
        opt_d.step()
        opt_d.zero_grad()
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)  # the updated discriminator, frozen
        g_logits = self.discriminator(fake.flatten(0, 1))
        adv = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
        bm = best_match_loss(fake, real)
        loss_g = adv + self.w * bm
        self.manual_backward(loss_g)
        opt_g.step()
        opt_g.zero_grad()
        self.untoggle_optimizer(opt_g)
        losses = {"train/loss_d": loss_d, "train/adv": adv, "train/best_match": bm}
        self.log_dict(losses, on_step=False, on_epoch=True)
        for key, v in losses.items():
            self._epoch.setdefault(key, []).append(float(v.detach()))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """val/loss: the best-match loss of the generator (eval mode) on held-out update sets,
        the generator's reconstruction objective (context.fit_attack_model selects the epoch
        on it)."""
        delta, real = batch
        with torch.random.fork_rng(devices=[]):  # the same noise every epoch; training's
            torch.manual_seed(batch_idx)  # random stream untouched
            loss = best_match_loss(self(delta), real)
        self.log("val/loss", loss, on_step=False, on_epoch=True)

    def on_train_epoch_end(self) -> None:
        for key, v in self._epoch.items():
            self.history.setdefault(key, []).append(sum(v) / len(v))
        self._epoch = {}

    def configure_optimizers(self):
        betas = (self.beta1, 0.999)
        gen = [*self.encoder.parameters(), *self.generator.parameters()]
        opt_g = torch.optim.Adam(gen, lr=self.lr, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=betas)
        return opt_g, opt_d


__all__ = ["CBMGAN"]
