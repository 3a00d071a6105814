"""Threshold membership inference on prediction confidence (Song, Shokri, Mittal CCS'19 §3.1).

Threat model: black-box access to the target's prediction vectors F(x) and knowledge of the
true label y; for I_A also of the robust regime's perturbation constraint (Kerckhoffs).
- I_B (eq. 3): score = F(x)_y on the benign input.
- I_A (eq. 4): score = F(x_adv)_y, x_adv untargeted L_inf PGD at `attack.eps` (released code:
  20 steps, step 2.5*eps/20, no random start, eval mode, clip to [0,1]).
A point is called a member iff its score >= tau; metrics.py picks tau (oracle `*_best`, or on a
shadow model, `*_calibrated`). Each scorer returns (scores [N], CE losses [N]) as numpy arrays;
the losses feed the KL-of-loss-distributions metric (Song et al. DLS'19).
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from lit_mia.attacks.base import Attack
from lit_mia.attacks.scoring import score_attack
from lit_mia.evaluation import Predictor, attack_pgd_args


def confidence_and_loss(logits: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """softmax(logits)_y and CE loss -log softmax(logits)_y, per sample. logits [N,K], y [N]."""
    logp = F.log_softmax(logits.double(), dim=1).gather(1, y.view(-1, 1)).squeeze(1)
    return logp.exp().numpy(), (-logp).numpy()


def benign_confidence(pred: Predictor, name: str, cfg) -> tuple[np.ndarray, np.ndarray]:
    """I_B scores of set `name`."""
    return confidence_and_loss(pred.logits(name), pred.labels(name))


def adversarial_confidence(
    pred: Predictor, name: str, cfg, eps: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """I_A scores of set `name`: confidence on untargeted PGD examples at `attack.eps`."""
    a = cfg.attack
    args = attack_pgd_args(a.eps if eps is None else eps, a.steps, a.step_size, a.random_start)
    return confidence_and_loss(pred.adv_logits(name, **args), pred.labels(name))


THRESHOLD_ATTACKS: dict[str, Attack] = {
    "ib": score_attack("ib", benign_confidence, description="I_B: benign confidence F(x)_y"),
    "ia": score_attack(
        "ia", adversarial_confidence, description="I_A: confidence on untargeted PGD examples"
    ),
}
