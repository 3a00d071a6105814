"""Natural training (CCS'19 eq. 1): minimise mean cross-entropy on benign training inputs.

Threat model: none; the privacy baseline every robust regime is compared with. Defaults
(`NaturalSettings` = targets/base.py `TargetSettings`): Adam, lr 1e-3.
Shapes: x [B,C,H,W] in [0,1], y [B], logits [B,K].
"""

from __future__ import annotations

from lit_mia.targets.base import TargetModule, TargetSettings

NaturalSettings = TargetSettings


class NaturalTarget(TargetModule):
    """Natural training: `TargetModule.training_loss` unchanged."""
