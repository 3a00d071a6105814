"""`baseline` (Yeom et al. CSF'18; Li & Zhang CCS'21 §2.2): member iff the target predicts the
true label. One label query per candidate; the score is 1 (correct) or 0 (wrong), so the
oracle threshold is the rule itself and the AUC is 0.5 * (1 + train acc - test acc).
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from lit_mia.attacks.label_only.oracle import LabelOracle
from lit_mia.predictor import Predictor


def correct_scores(pred: Predictor, name: str, cfg: DictConfig) -> tuple[np.ndarray, None]:
    """1.0 where the target's label equals the true label of set `name`, else 0.0.
    Only the label oracle built from `pred.model` is queried (one query per sample)."""
    x, y = pred.sets[name]
    oracle = LabelOracle(pred.model, len(x), budget=1, batch_size=cfg.attack.batch_size)
    return (oracle(x).numpy() == y.numpy()).astype(float), None


__all__ = ["correct_scores"]
