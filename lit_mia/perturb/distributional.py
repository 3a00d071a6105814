"""Lagrangian-relaxation ascent of distributional adversarial training, L_inf penalty.

Sinha, Namkoong, Duchi. "Certifying Some Distributional Robustness with Principled Adversarial
Training", ICLR 2018 (Appendix E, L_inf variant); Song, Shokri, Mittal CCS'19 eq. 10:

    max_x~  CE(F(x~), y) - gamma * ||x~ - x||_inf

As in the CCS'19 released code (`LinfWRMAttack`), there is no explicit gamma and no eps-ball:
each of the `steps` steps does, with g = d/dx~ of the CE summed over the batch,

    x~ <- clip_[0,1]( x~ + a*g - mean(|a*g|) * sign(x~ + a*g - x) )        a = `step_size`

The second term pulls every pixel back towards x by one batch-wide constant (the mean of |a*g|
over all samples and pixels of the batch, as the released numpy code computes it), the
subgradient step of the L_inf-like penalty. Only the [0,1] clip bounds x~: ||x~ - x||_inf is
not constrained, so `eps` plays no role here (it only sets how the trained model is
evaluated). There is no random start. Defaults
(docs/reference/paper-defaults.md#robust-training): FMNIST a=1, 8 steps; Yale a=1.5, 10 steps;
CIFAR-10 10 steps of the released coeff 12 on 0-255 pixels, a = 12/255 here.

Shapes: x (N, *) in [0,1], y (N,) int64; returns x_adv with x's shape, detached.
Invariants as in pgd.py: the model runs in eval mode and gets every submodule's training flag
back, also on error; gradients come from torch.autograd.grad on the input only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.perturb.pgd import check_nonnegative, eval_mode, require_autograd


def sinha_linf_ascent(
    model: nn.Module, x: Tensor, y: Tensor, steps: int, step_size: float
) -> Tensor:
    """`steps` penalised ascent steps of size `step_size` from x; returns detached x_adv."""
    check_nonnegative(steps=steps, step_size=step_size)
    x0 = x.detach()
    if steps == 0 or step_size == 0:
        return x0.clone()
    require_autograd("sinha_linf_ascent")
    x_adv = x0.clone()
    with eval_mode(model), torch.enable_grad():
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv), y, reduction="sum")  # per-sample gradients
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = x_adv.detach()
            ascent = step_size * grad  # (N, *)
            pull = ascent.abs().mean() * torch.sign(x_adv + ascent - x0)  # batch-wide scale
            x_adv = (x_adv + ascent - pull).clamp(0, 1)
    return x_adv.detach()
