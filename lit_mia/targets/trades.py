"""Difference-based adversarial training, TRADES (Zhang et al. ICML 2019; CCS'19 eq. 11-12).

Loss (the CCS'19 released `trades_loss`, which follows the TRADES code):

    CE(g(x), y) + beta * KL(F(x) || F(x_adv))
      = CE(g(x), y) + beta * KLDiv(log_softmax(g(x_adv)), softmax(g(x)).detach()), batchmean

CCS'19 eq. 11 writes the divergence as d_kl(F(x_adv), F(x)); the code computes
KL(F(x) || F(x_adv)) with `nn.KLDivLoss(size_average=False)(log F(x_adv), F(x)) / B`, which is
what is implemented. The clean target distribution is detached, as in the CCS'19 code (the
original TRADES repository does not detach it); the clean logits g(x) of the CE term are also
the KL target (the released code runs a second, identical clean forward).

Inner maximisation (eq. 12): L_inf PGD of the KL, in eval mode, from x + 0.001 * N(0, 1) (drawn
from a generator seeded with the run seed), `steps` signed steps of `step_size`, projected onto
the eps-ball and [0,1]; the attack's target F(x) is the eval-mode clean prediction, detached.
With beta = 0 the attack is skipped and the step equals natural training exactly.

Defaults (`TradesSettings`, FMNIST; docs/reference/paper-defaults.md#robust-training):
beta 1.0, eps 0.1, 8 steps, step 0.02;
CIFAR-10: eps 8/255, 10 steps, step 0.007. Shapes: x [B,C,H,W] in [0,1], y [B].
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.perturb.pgd import eval_mode, pgd
from lit_mia.targets.base import TargetModule
from lit_mia.targets.settings import TradesSettings


def kl_to_clean(logits_adv: Tensor, p_clean: Tensor) -> Tensor:
    """sum_i KL(p_clean_i || softmax(logits_adv_i)) over the batch (KLDivLoss, reduction sum)."""
    return F.kl_div(F.log_softmax(logits_adv, dim=1), p_clean, reduction="sum")


def trades_adversary(
    net: nn.Module,
    x: Tensor,
    eps: float,
    steps: int,
    step_size: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """x_adv maximising KL(F(x) || F(x_adv)) in the eps-ball (eq. 12); eval mode, modes restored."""
    with eval_mode(net), torch.no_grad():
        p_clean = F.softmax(net(x), dim=1)  # [B, K], the attack's fixed target
    gen_device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=gen_device, dtype=x.dtype)
    start = x + 0.001 * noise.to(x.device)
    return pgd(net, x, p_clean, eps, steps, step_size, loss_fn=kl_to_clean, start=start)


class TradesTarget(TargetModule):
    Settings: ClassVar[type[TradesSettings]] = TradesSettings
    adversarial: ClassVar[bool] = True

    def __init__(self, net: nn.Module, settings: TradesSettings | None = None, **kwargs) -> None:
        super().__init__(net, settings, **kwargs)
        s = self.settings
        self.eps, self.steps, self.step_size, self.beta = s.eps, s.steps, s.step_size, s.beta
        self._gen: torch.Generator | None = None

    def adversarial_examples(self, x: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        if self._gen is None or self._gen.device != x.device:
            self._gen = torch.Generator(device=x.device).manual_seed(self.seed + self.global_rank)
        return trades_adversary(self.net, x, self.eps, self.steps, self.step_size, self._gen)

    def training_loss(self, x: Tensor, y: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        if self.beta == 0:  # natural training, step for step (no attack, no RNG draw)
            logits = self.net(x)
            return F.cross_entropy(logits, y), logits
        x_adv = self.step_adversarial(x, y, idx)  # attack first: DP hooks see train forwards last
        logits = self.net(x)  # [B, K]
        p_clean = F.softmax(logits, dim=1).detach()
        robust = kl_to_clean(self.net(x_adv), p_clean) / x.shape[0]  # batchmean
        return F.cross_entropy(logits, y) + self.beta * robust, logits
