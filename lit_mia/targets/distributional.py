"""Distributional adversarial training (Sinha, Namkoong, Duchi ICLR 2018; CCS'19 eq. 10).

Loss: CE(g(x_adv), y) on the examples of the Lagrangian-relaxation ascent only (alpha = 0),
x_adv = `sinha_linf_ascent(net, x, y, steps, a)` (lit_mia/perturb/distributional.py: the CCS'19
released L_inf-penalty steps, no gamma, no eps-ball, only the [0,1] clip, eval mode).

`eps` is not used in training: it is the radius at which the trained model is evaluated
(`target/adv_*_acc`, `val/adv_acc`, via targets.eval_eps). CCS'19 evaluates its dist models with
the same PGD attack as the other empirical defences, at eps 0.1 for Fashion-MNIST (8/255 for
CIFAR-10 and Yale), so `DistSettings` keeps eps 0.1.

Defaults (`DistSettings`, FMNIST; docs/reference/paper-defaults.md#robust-training):
a = `dist_step_size` 1.0, 8 steps;
Yale a 1.5, 10 steps; CIFAR-10 10 steps with the released `coeff` 12, which acts on 0-255 pixels
(x_255 += 255 * 12 * dL/dx_255 = 12 * dL/dx_01), i.e. a = 12/255 in [0,1] pixel space.
Shapes: x [B,C,H,W] in [0,1], y [B].
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.perturb.distributional import sinha_linf_ascent
from lit_mia.targets.base import TargetModule
from lit_mia.targets.settings import DistSettings


class DistTarget(TargetModule):
    Settings: ClassVar[type[DistSettings]] = DistSettings
    adversarial: ClassVar[bool] = True

    def __init__(self, net: nn.Module, settings: DistSettings | None = None, **kwargs):
        super().__init__(net, settings, **kwargs)
        self.steps, self.step_size = self.settings.steps, self.settings.dist_step_size

    def adversarial_examples(self, x: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        return sinha_linf_ascent(self.net, x, y, self.steps, self.step_size)

    def training_loss(self, x: Tensor, y: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        if self.steps > 0 and self.step_size > 0:
            x = self.step_adversarial(x, y, idx)
        logits = self.net(x)
        return F.cross_entropy(logits, y), logits
