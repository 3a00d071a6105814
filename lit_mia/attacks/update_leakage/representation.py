"""What the Updates-Leak decoders see of a posterior difference (Salem et al. USENIX
Security'20, §3.2; the setting `updates.representation`, issue 11).

The farm keeps float64 log-posterior differences dl = log p_updated - log p_base on the probes
(models/update_farm.py). A one-step update's difference scales with 1 - p_y of the update sample: on
mnist5k's LeNet the base model puts p_y > 0.99 on ~77% of the update pool and delta norms at
the 10th / 50th / 90th percentile are 5e-6 / 1e-3 / 0.6, so any fixed scaling leaves most
inputs near one vector and the decoders fall back to the mean output. Representations
([m, n_probe * C] -> float32 features):

    log_unit      dl / ||dl|| * sqrt(d), plus the standardised log ||dl|| as one more input
                  (default: direction and size separated; scale invariant in the direction)
    unit          the same on posterior differences p_base * expm1(dl) (float64)
    standardized  posterior differences minus the shadow per-feature mean, divided by the
                  shadow overall std (the shipped encoder before issue 11)

The log-norm is standardised with the shadow side's mean and std (the adversary's data only)
and clipped to +-10, so a zero delta (norm floored at 1e-30) stays finite.

The default is chosen by measurement (label accuracy of a logistic regression on the shadow
features, tested on the target side, k = 1):
- tests/test_updates_leak.py fixture as it was then (MLP base, 600 shadow / 150 target
  updates, 40 probes):
  log_unit 0.99, unit 0.69, standardized 0.53;
- mnist5k LeNet (issue 11's feasibility run, 2,400 shadow / 500 target updates): standardized
  0.43, unit on float32 deltas 0.85, unit on float64 0.91, log_unit 1.00; the shipped
  updates_leak_single with log_unit: A_LI (the MLP decoder) 0.982 (README "Update leakage").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lit_mia.attacks.update_leakage.settings import REPRESENTATIONS
from lit_mia.errors import ConfigError

NORM_FLOOR = 1e-30
CLIP = 10.0


def check_representation(name: str) -> None:
    if name not in REPRESENTATIONS:
        raise ConfigError(
            f"updates.representation must be one of {', '.join(REPRESENTATIONS)}, got {name!r}"
        )


def _raw(name: str, side, n_probe: int | None) -> Tensor:
    """The side's deltas (float64) of the first n_probe probes, log or plain posteriors."""
    _n_bases, p, c = side.base_logp.shape
    n = p if n_probe is None else int(n_probe)
    dl = side.deltas.double().view(-1, p, c)[:, :n]
    if name == "log_unit":
        return dl.flatten(1)
    base = side.base_logp.double()[side.base_of.long(), :n]  # [m, n, C]
    return (base.exp() * torch.expm1(dl)).flatten(1)


def unit_and_lognorm(x: Tensor) -> tuple[Tensor, Tensor]:
    """(x / ||x|| * sqrt(d) with 0 for a zero row, log max(||x||, NORM_FLOOR)), float64."""
    norm = x.norm(dim=1, keepdim=True)
    unit = torch.where(norm > 0, x / norm.clamp_min(NORM_FLOOR), torch.zeros_like(x))
    return unit * math.sqrt(x.shape[1]), norm.clamp_min(NORM_FLOOR).log()


def features(name: str, side, ref, n_probe: int | None = None) -> Tensor:
    """float32 decoder inputs of `side` in representation `name`; statistics from `ref` (the
    shadow side). [m, n_probe * C + 1] for log_unit / unit, [m, n_probe * C] standardized."""
    check_representation(name)
    x, r = _raw(name, side, n_probe), _raw(name, ref, n_probe)
    if name == "standardized":
        mean = r.mean(0)
        std = (r - mean).pow(2).mean().sqrt().clamp_min(1e-12)
        return ((x - mean) / std).float()
    unit, ln = unit_and_lognorm(x)
    _, ln_ref = unit_and_lognorm(r)
    z = ((ln - ln_ref.mean()) / ln_ref.std().clamp_min(1e-12)).clamp(-CLIP, CLIP)
    return torch.cat([unit, z], dim=1).float()


__all__ = ["REPRESENTATIONS", "check_representation", "features", "unit_and_lognorm"]
