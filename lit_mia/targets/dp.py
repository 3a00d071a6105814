"""DP-SGD (Abadi et al. CCS'16) for any training regime, through opacus.

Used by `TargetModule` when `target.dp_noise_multiplier > 0` (Li & Zhang CCS'21 §6 study noise
multipliers 0.1 / 0.5 / 1.1): per-sample gradients are clipped to L2 norm `dp_max_grad_norm`,
summed, Gaussian noise of std `noise_multiplier * max_grad_norm` is added and the sum divided by
the expected batch size (opacus `DPOptimizer`). The RDP accountant reports the spent
(epsilon, `dp_delta`) as `train/dp_epsilon` every epoch.

How it is wired (opacus' Lightning example, adapted):
- `check_net(net)` at construction: a layer opacus cannot give per-sample gradients for (e.g.
  BatchNorm, which mixes the samples of a batch) is a ConfigError naming the layer.
- `DPSGD.make_private` in `configure_optimizers`: `PrivacyEngine.make_private(wrap_model=False)`
  attaches per-sample-gradient hooks to `net` itself, so `self.net`, its state_dict keys and
  checkpoints are unchanged. Sample rate = 1 / len(train loader). The loader is NOT replaced by
  Poisson sampling (`poisson_sampling=False`): batches are the usual seeded shuffle, and the
  accountant treats them as Poisson-sampled with that rate, opacus' documented approximation.
- Attacks inside a training step (PGD, TRADES, Sinha) run `net` in eval mode and take input
  gradients; their backward passes must not add to the per-sample gradients. A forward
  pre-hook switches opacus' hooks on for train-mode forwards and off for eval-mode ones, so the
  net's *last* forward before `backward` must be a train-mode one (every regime attacks first,
  then computes its loss).
- Noise comes from a torch.Generator seeded from the run seed (same seed, same weights on CPU).

Loss terms that do not decompose over samples break the per-sample clipping argument, and
opacus' noisy gradient replaces any parameter gradient that does not flow through the hooked
layers, so config.validate rejects DP together with `da_weight`, `l1` or `l2` (use the
optimiser's `weight_decay`), and with DDP strategies (opacus needs its own DPDDP wrapper).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from lit_mia.errors import ConfigError


def check_net(net: nn.Module) -> None:
    """ConfigError naming the first layer of `net` that opacus cannot train privately."""
    from opacus.validators import ModuleValidator

    for name, m in net.named_modules():
        label = f"{name or '<net>'} ({type(m).__name__})"
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            raise ConfigError(
                f"target.dp_noise_multiplier > 0 (DP-SGD) cannot train layer {label}: BatchNorm "
                "mixes the samples of a batch; use a net without BatchNorm"
            )
        own = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        validator = ModuleValidator.VALIDATORS.get(type(m))
        errors = list(validator(m)) if validator is not None else []
        if not errors and any(True for _ in m.buffers(recurse=False)):
            errors = ["trainable layer with buffers"]
        if errors:
            first = str(errors[0]).strip().splitlines()[0][:160]
            raise ConfigError(
                f"target.dp_noise_multiplier > 0 (DP-SGD) cannot train layer {label}: {first}"
            )


class DPSGD:
    """opacus state of one fit: privacy engine, per-sample-gradient hooks, accountant."""

    def __init__(self, noise_multiplier: float, max_grad_norm: float, delta: float, seed: int):
        from opacus import PrivacyEngine

        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.delta = delta
        self.seed = seed
        self.engine = PrivacyEngine(accountant="rdp")
        self._hooks = None
        self._mode_hook = None

    def make_private(
        self, net: nn.Module, optimizer: torch.optim.Optimizer, train_loader: DataLoader
    ) -> torch.optim.Optimizer:
        """Attach per-sample-gradient hooks to `net`; returns the DP optimiser to step."""
        gen = torch.Generator(device=next(net.parameters()).device).manual_seed(self.seed)
        hooks, dp_optimizer, _ = self.engine.make_private(
            module=net,
            optimizer=optimizer,
            data_loader=train_loader,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.max_grad_norm,
            poisson_sampling=False,
            noise_generator=gen,
            wrap_model=False,
        )
        self._hooks = hooks

        def follow_mode(module: nn.Module, args) -> None:  # per-sample grads: train mode only
            hooks.hooks_enabled = module.training

        self._mode_hook = net.register_forward_pre_hook(follow_mode)
        return dp_optimizer

    def epsilon(self) -> float:
        """Spent epsilon at `delta` so far (0 before the first step)."""
        return float(self.engine.get_epsilon(self.delta)) if self.engine.accountant.history else 0.0

    def detach(self) -> None:
        """Remove every hook from the net (after fit): predictions and attacks run plain."""
        if self._mode_hook is not None:
            self._mode_hook.remove()
            self._mode_hook = None
        if self._hooks is not None:
            self._hooks.cleanup()
            self._hooks = None
