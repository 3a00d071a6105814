"""Membership inference attacks by name (the `attacks` list).

Each entry maps (Predictor, set name, attack config) -> (scores [N], CE losses [N]); higher
score = more likely a member. Adding an attack: its module here, one registry line,
conf/attack/<name>.yaml, its test.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lit_mia.attacks.threshold import adversarial_confidence, benign_confidence

Scorer = Callable[..., tuple[np.ndarray, np.ndarray]]

ATTACKS: dict[str, Scorer] = {
    "ib": benign_confidence,
    "ia": adversarial_confidence,
}

__all__ = ["ATTACKS", "Scorer"]
