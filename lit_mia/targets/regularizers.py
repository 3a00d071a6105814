"""Countermeasures against membership inference that work with every training regime.

Their settings (`CountermeasureSettings`, keys `target.temperature`, `target.da_weight`, ...) are
part of every regime's settings class (targets/base.py `TargetSettings` extends this one) and are
applied by `TargetModule` (base.py), so a regime gets them without code of its own:

- temperature scaling (Song et al. CCS'19 §7.2.1, eq. 21; Guo et al. 2017): F(x) = softmax(g(x)/T)
  at prediction time only. `TargetModule.forward` returns net(x)/T, so the Predictor, every
  attack and attack-time PGD see the scaled logits; training losses, training-time attacks and
  the per-epoch validation call `net` directly and see raw logits. T = 1: forward is net(x).
- DA regularisation (Song, He, Wang, Hopcroft ICLR'19 "Improving the generalization of adversarial
  training with domain adaptation"; CCS'19 §7.2.2, Table 11): `da_weight * da_regularizer(
  g(x), g(x_adv))` on the regime's own adversarial examples of the batch (natural and verifiable
  regimes: PGD at target.eps with target.steps / step_size / random_start).
- L1 / L2 weight penalties (Li & Zhang CCS'21 §6: L1 lambda 1e-4..5e-3, L2 0.01..0.1) as explicit
  loss terms `l1 * sum|w|`, `l2 * sum w^2` over the weight matrices and kernels (parameters with
  >= 2 dims; biases and norm-layer scales are not penalised, as in the CCS'19 released code's
  weight decay). The optimiser's `weight_decay` is separate and can be combined.
- DP-SGD (Abadi et al. 2016) through opacus: `dp_noise_multiplier` > 0 turns it on; see dp.py.

Dropout is the net's own knob (`net.dropout`); data augmentation is a data option
(`data.augment`, lit_mia/data/datamodule.py).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_mia.targets.settings import CountermeasureSettings  # noqa: F401 (re-export)


def da_regularizer(logits_benign: Tensor, logits_adv: Tensor) -> Tensor:
    """l1 distance of the batch means plus l1 distance of the batch covariances of two logit sets.

    Both [B, K]. Returns the scalar mean|mu_b - mu_a| + mean|S_b - S_a|, i.e. the l1 norms
    normalised by K and K^2 (ATDA's L_MMD and L_CORAL with l1 distances); S is the unbiased
    covariance over the batch (divisor B - 1, or 1 when B = 1). 0 for identical inputs.
    """
    if logits_benign.shape != logits_adv.shape or logits_benign.dim() != 2:
        raise ValueError(
            f"da_regularizer needs two [B, K] logit sets of one shape, got "
            f"{tuple(logits_benign.shape)} and {tuple(logits_adv.shape)}"
        )
    mean_b, mean_a = logits_benign.mean(0), logits_adv.mean(0)  # [K]
    return (mean_b - mean_a).abs().mean() + (_cov(logits_benign) - _cov(logits_adv)).abs().mean()


def _cov(z: Tensor) -> Tensor:
    """[K, K] covariance of the rows of z [B, K], divisor max(B - 1, 1)."""
    centred = z - z.mean(0, keepdim=True)
    return centred.T @ centred / max(z.shape[0] - 1, 1)


def penalised_weights(net: nn.Module) -> list[Tensor]:
    """The trainable weight matrices and kernels of `net` (parameters with >= 2 dims)."""
    return [p for p in net.parameters() if p.requires_grad and p.dim() >= 2]


def weight_l1(net: nn.Module) -> Tensor:
    """sum |w| over `penalised_weights(net)` (a 0-dim tensor)."""
    ws = penalised_weights(net)
    return torch.stack([w.abs().sum() for w in ws]).sum() if ws else _zero(net)


def weight_l2(net: nn.Module) -> Tensor:
    """sum w^2 over `penalised_weights(net)` (a 0-dim tensor)."""
    ws = penalised_weights(net)
    return torch.stack([w.square().sum() for w in ws]).sum() if ws else _zero(net)


def _zero(net: nn.Module) -> Tensor:
    p = next(net.parameters(), None)
    return torch.zeros(()) if p is None else p.new_zeros(())
