"""Verifiably robust training (Song, Shokri, Mittal CCS'19 §2.1.3, eq. 13-14): the loss uses a
verified upper bound of the worst-case loss over the L_inf eps-ball ∩ [0,1] (pixel space).

- `ibp` (Gowal et al. 2018, interval bound propagation): kappa * CE(z(x), y)
  + (1 - kappa) * CE(-m, y), m [B,K] the elided IBP lower bounds of z_y - z_j (lit_mia.bounds).
  eps_t 0 -> eps and kappa kappa_start (1) -> kappa_end (0.5) linearly over
  [warmup, warmup + ramp]. Released FMNIST code: eps 0.1, warmup 8,000 steps, ramp 30,000.
- `diffai` (Mirman et al. 2018, box domain, eq. 14): CE(z(x), y)
  + softplus(max_{j != y} -m_j) with the same interval bounds; box width ramped linearly over
  `ramp_epochs` after `warmup_epochs` (FMNIST: eps 0.1, 30 epochs after epoch 20).
- `dual` (Wong & Kolter 2018, with Wong et al. 2018's random projections): CE of the dual-bound
  worst-case logits from `convex_adversarial.RobustBounds` (the loss of `robust_loss`, alpha=0),
  proj 20 (FMNIST) or 50, norm_type l1_median, bounded_input; grad-norm clip 1; eps ramped
  eps_start 0.003 -> eps over 20 epochs (FMNIST). The net is rewritten by
  `bounds.fold_normalize` (convex_adversarial knows no Normalize); nets with max/avg pooling or
  LeakyReLU are rejected at construction. CPU cost per step: ~30-50x natural for an mlp,
  ~700x for fmnist_cnn at width 1/16 on 28x28 (IBP and DiffAI: ~2-4x).

Defaults: `IBPSettings`, `DiffAISettings`, `DualSettings`, the released values with epochs
scaled to CPU.
`grad_clip` > 0 clips the gradient norm in `configure_gradient_clipping` (dual: 1).

Schedules are in optimizer steps (global_step). The config gives `warmup_epochs`/`ramp_epochs`
(floats) so the CPU-scaled defaults follow any data size; at `on_train_start` they become steps
with steps_per_epoch = ceil(num_training_batches / accumulate_grad_batches), which is
`trainer.estimated_stepping_batches / max_epochs` when max_steps is unset. Before training
(no trainer) the schedule reads as finished: eps, kappa_end.

Verification (`verified_mask`, `worst_case_logits`, `val/ver_acc` at the final eps) uses the
regime's own verifier in eval mode: IBP intervals for ibp/diffai; for dual the exact dual bound
(no projection, norm l1: the projected one is a random estimate, not a bound). The exact bound
is cheap for mlp nets but not for convs on 28x28 (fmnist_cnn at width 1/16: ~16 s and 6 GB per
image on CPU): `verify_proj=k` then verifies with the k-projection estimate instead.
`worst_case_logits` returns -m (z_y = 0, z_j >= the worst z_j - z_y), so softmax(.)_y is a
verified lower bound of the confidence in y over the ball (I_V).

Logged per epoch besides the base ones: `train/eps`, `train/robust_loss`, `train/kappa` (ibp),
`val/ver_acc`. Shapes: x [B,C,H,W] in [0,1], y [B], logits/margins [B,K], masks [B].
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia import bounds
from lit_mia.errors import ConfigError
from lit_mia.perturb.pgd import eval_mode
from lit_mia.targets.base import TargetModule, epoch_mean
from lit_mia.targets.settings import (  # noqa: F401 (re-export)
    NORM_TYPES,
    DiffAISettings,
    DualSettings,
    IBPSettings,
    VerifiableSettings,
)


def ramp(step: float, start: float, length: float) -> float:
    """0 before `start`, 1 from `start + length` on, linear in between (a step if length 0)."""
    if step < start:
        return 0.0
    if length <= 0 or step >= start + length:
        return 1.0
    return (step - start) / length


class VerifiableTarget(TargetModule):
    """Shared schedule, logging, clipping and verification of the verifiable regimes."""

    Settings: ClassVar[type[VerifiableSettings]] = VerifiableSettings
    adversarial: ClassVar[bool] = True  # trains against the eps-ball
    verifiable: ClassVar[bool] = True  # has a verifier: verified_mask / worst_case_logits

    def __init__(self, net: nn.Module, settings: VerifiableSettings | None = None, **kwargs):
        super().__init__(net, settings, **kwargs)
        s = self.settings
        self.eps, self.eps_start = float(s.eps), float(s.eps_start)
        self.warmup_epochs, self.ramp_epochs = float(s.warmup_epochs), float(s.ramp_epochs)
        self.kappa_start = float(getattr(s, "kappa_start", 1.0))  # ibp only; 1: clean CE off
        self.kappa_end = float(getattr(s, "kappa_end", 1.0))
        self.grad_clip = float(s.grad_clip)
        self.steps_per_epoch: int | None = None  # set at on_train_start
        self._last = (self.eps, self.kappa_end)  # (eps_t, kappa_t) of the latest step
        self.train_robust_loss = epoch_mean()  # train/robust_loss, sample-weighted
        self.check_net()

    def check_net(self) -> None:
        bounds.check_supported(self.net, self.net_name)

    # ------------------------------------------------------------ schedule
    def schedule_at(self, step: int) -> tuple[float, float]:
        """(eps_t, kappa_t) at optimizer step `step`; finished if steps_per_epoch is unknown."""
        if self.steps_per_epoch is None:
            frac = 1.0
        else:
            spe = self.steps_per_epoch
            frac = ramp(step, self.warmup_epochs * spe, self.ramp_epochs * spe)
        eps_t = self.eps_start + (self.eps - self.eps_start) * frac
        return eps_t, self.kappa_start + (self.kappa_end - self.kappa_start) * frac

    def on_train_start(self) -> None:
        super().on_train_start()
        n = self.trainer.num_training_batches
        if not math.isfinite(n):
            raise ConfigError("verifiable targets need a train loader with a length (schedule)")
        self.steps_per_epoch = max(1, math.ceil(n / self.trainer.accumulate_grad_batches))

    def _schedule_now(self) -> tuple[float, float]:
        self._last = self.schedule_at(self.global_step)
        return self._last

    # ------------------------------------------------------------ loss bookkeeping
    def _record(self, robust: Tensor, n: int) -> None:
        self.train_robust_loss.update(robust.detach().expand(n))  # batch mean, once a sample

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self.train_robust_loss.reset()

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log("train/eps", self._last[0], on_step=False, on_epoch=True)
        if self.train_robust_loss.update_called:  # Lightning computes (synced) and resets it
            self.log("train/robust_loss", self.train_robust_loss, on_step=False, on_epoch=True)

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ) -> None:
        if self.grad_clip > 0:
            self.clip_gradients(optimizer, self.grad_clip, "norm")
        else:
            super().configure_gradient_clipping(
                optimizer, gradient_clip_val, gradient_clip_algorithm
            )

    # ------------------------------------------------------------ verification
    def margins(self, x: Tensor, y: Tensor, eps: float) -> Tensor:
        """Verified lower bounds [B,K] of z_y - z_j over the eps-ball (entry y = 0), with
        grad; the net as it is now (callers choose the mode)."""
        return bounds.margin_lower_bounds(self.net, x, y, eps, net_name=self.net_name)

    @torch.no_grad()
    def worst_case_logits(self, x: Tensor, y: Tensor, eps: float) -> Tensor:
        """[B,K] -margins / T in eval mode: softmax(.)_y lower-bounds the prediction confidence
        softmax(g(x')/T)_y over the ball (T the prediction temperature, as `forward`)."""
        with eval_mode(self.net):
            z = -self.margins(x, y, eps)
        return self.temper(z)

    @torch.no_grad()
    def verified_mask(self, x: Tensor, y: Tensor, eps: float) -> Tensor:
        """[B] bool, eval mode: the regime's verifier proves y on all of the eps-ball ∩ [0,1]."""
        with eval_mode(self.net):
            return bounds.verified_from_margins(self.margins(x, y, eps), y)

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        x, y, _ = batch
        ver = self.verified_mask(x, y, self.eps).float().mean()
        self.log("val/ver_acc", ver, sync_dist=True, prog_bar=True)


class IBPTarget(VerifiableTarget):
    """Gowal et al. 2018: kappa * CE(z(x), y) + (1 - kappa) * CE(-m_eps_t, y)."""

    Settings = IBPSettings

    def training_loss(self, x: Tensor, y: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        eps_t, kappa = self._schedule_now()
        logits = self.net(x)
        clean = F.cross_entropy(logits, y)
        # eps 0: the elided bound is exact, so the robust CE is the clean CE.
        robust = F.cross_entropy(-self.margins(x, y, eps_t), y) if eps_t > 0 else clean
        self._record(robust, y.numel())
        return kappa * clean + (1 - kappa) * robust, logits

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log("train/kappa", self._last[1], on_step=False, on_epoch=True)


class DiffAITarget(VerifiableTarget):
    """Mirman et al. 2018, box domain: CE(z(x), y) + softplus(max_{j != y} -m_j), CCS'19 eq. 14."""

    Settings = DiffAISettings

    def training_loss(self, x: Tensor, y: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        eps_t, _ = self._schedule_now()
        logits = self.net(x)
        worst = -self.margins(x, y, eps_t)  # [B,K] upper bounds of z_j - z_y
        onehot = F.one_hot(y, worst.shape[1]).bool()
        robust = F.softplus(worst.masked_fill(onehot, float("-inf")).amax(1)).mean()
        self._record(robust, y.numel())
        return F.cross_entropy(logits, y) + robust, logits


class DualTarget(VerifiableTarget):
    """Wong & Kolter 2018: CE of convex_adversarial's dual worst-case logits (alpha = 0)."""

    Settings = DualSettings

    def __init__(self, net: nn.Module, settings: DualSettings | None = None, **kwargs) -> None:
        super().__init__(net, settings, **kwargs)
        s = self.settings
        self.proj, self.norm_type, self.verify_proj = s.proj, s.norm_type, s.verify_proj

    def check_net(self) -> None:
        bounds.fold_normalize(self.net, net_name=self.net_name)  # raises on unsupported layers

    def training_loss(self, x: Tensor, y: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        eps_t, _ = self._schedule_now()
        # = convex_adversarial.robust_loss(...)[0], without its per-step .item() sync.
        f = bounds.dual_worst_case_logits(
            self.net, x, y, eps_t, proj=self.proj, norm_type=self.norm_type, net_name=self.net_name
        )
        loss = F.cross_entropy(f, y)
        self._record(loss, y.numel())
        with torch.no_grad():
            logits = self.net(x)  # for train/acc only
        return loss, logits

    def margins(self, x: Tensor, y: Tensor, eps: float) -> Tensor:
        """Dual lower bounds of z_y - z_j: exact (sound) with verify_proj=None, else the
        l1_median estimate with verify_proj projections (not a guaranteed bound)."""
        p = self.verify_proj
        return -bounds.dual_worst_case_logits(
            self.net, x, y, eps, proj=p, norm_type="l1" if p is None else "l1_median",
            net_name=self.net_name,
        )  # fmt: skip
