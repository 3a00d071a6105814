"""Threshold membership inference on prediction confidence (Song, Shokri, Mittal CCS'19 §3.1).

Threat model: black-box access to the target's prediction vectors F(x) and knowledge of the
true label y; for I_A also of the robust regime's perturbation constraint (Kerckhoffs).
- I_B (eq. 3): score = F(x)_y on the benign input.
- I_A (eq. 4): score = F(x_adv)_y, x_adv untargeted L_inf PGD at `attack.eps` (released code:
  20 steps, step 2.5*eps/20, no random start, eval mode, clip to [0,1]).
- I_V (§3.4, eq. 20): score = V(F(x~)_y, B_eps), the verified worst-case confidence
  softmax(z)_y over the L_inf ball at `attack.eps`, z the worst-case logits of the verifier the
  target was trained with (intervals for ibp/diffai, convex_adversarial's dual network for
  dual; the prediction temperature applies). Only for targets that have a verifier.
- `ia_sweep` (§7.1, Fig. 5): I_A at every eps of `attack.eps_list` (eps 0 = I_B); accuracy vs
  attack eps as stepped metrics (step = position in eps_list) and a plot. The calibrated
  summary picks its eps on the shadow model (`choose_eps`, logged as `eps_calibrated`); the
  eps of the largest oracle accuracy is `eps_best`.
A point is called a member iff its score >= tau; metrics.py picks tau (oracle `*_best`, or on a
shadow model, `*_calibrated`). Each scorer returns (scores [N], CE losses [N]) as numpy arrays;
the losses feed the KL-of-loss-distributions metric (Song et al. DLS'19).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from lit_mia import plots
from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.scoring import scored_result
from lit_mia.errors import ConfigError
from lit_mia.perturb.pgd import pgd_args
from lit_mia.predictor import Predictor
from lit_mia.targets import TARGETS, target_names


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
    args = pgd_args(cfg.attack, eps)
    return confidence_and_loss(pred.adv_logits(name, **args), pred.labels(name))


def verified_confidence(pred: Predictor, name: str, cfg) -> tuple[np.ndarray, np.ndarray]:
    """I_V scores of set `name`: softmax of the verifier's worst-case logits at `attack.eps`."""
    return confidence_and_loss(pred.worst_case_logits(name, cfg.attack.eps), pred.labels(name))


def check_verifier(cfg) -> None:
    """I_V needs every target of the experiment to carry a verifier (CCS'19 §3.4)."""
    with_verifier = sorted(n for n, c in TARGETS.items() if getattr(c, "verifiable", False))
    for name in target_names(cfg):
        if not getattr(TARGETS[name], "verifiable", False):
            raise ConfigError(
                f"attack iv needs a target with a verifier (target.name one of "
                f"{', '.join(with_verifier)}); target {name!r} has none"
            )


SWEEP_KEYS = (
    "acc_best",
    "auc",
    "advantage_best",
    "tpr_at_fpr_0.01",
    "acc_calibrated",
    "acc_calibrated_shadow",
)


def choose_eps(series: dict[str, list[float]], eps_list: list[float]) -> dict[str, float]:
    """The sweep's summary numbers.

    Oracle (named ``*_best``, they look at the target's evaluation members): the largest
    ``acc_best`` over eps and its eps. Calibrated (what an adversary can do): the eps whose
    calibrated rule is most accurate on the *shadow model's own* members / non-members
    (``acc_calibrated_shadow``; ties -> the smallest eps), logged as ``eps_calibrated``, and the
    target's calibrated accuracy at that eps, ``acc_calibrated_chosen_eps`` (the per-eps
    ``acc_calibrated`` is a series stepped by eps, so the summary needs its own name). The
    target's calibrated accuracies are never maximised over.
    """
    best = int(np.argmax(series["acc_best"]))
    out = {"acc_best_max": series["acc_best"][best], "eps_best": eps_list[best]}
    if "acc_calibrated_shadow" in series:
        pick = int(np.argmax(series["acc_calibrated_shadow"]))
        out["eps_calibrated"] = eps_list[pick]
        out["acc_calibrated_chosen_eps"] = series["acc_calibrated"][pick]
        out["acc_calibrated_shadow_chosen_eps"] = series["acc_calibrated_shadow"][pick]
    return out


def ia_sweep(ctx: AttackContext) -> AttackResult:
    """I_A at every attack eps of `attack.eps_list` (CCS'19 Fig. 5)."""
    eps_list = [float(e) for e in ctx.cfg.attack.eps_list]
    rows = [scored_result(ctx, partial(adversarial_confidence, eps=e)).metrics for e in eps_list]
    series = {k: [r[k] for r in rows] for k in SWEEP_KEYS if k in rows[0]}
    series["eps"] = eps_list
    out = choose_eps(series, eps_list)
    head = ",".join(["eps", *rows[0]])
    table = [head] + [",".join(repr(v) for v in [e, *r.values()]) for e, r in zip(eps_list, rows)]
    fig = plots.metric_vs(
        eps_list,
        {k: series[k] for k in ("acc_best", "acc_calibrated", "auc") if k in series},
        xlabel="attack eps (L_inf)",
        title=f"I_A vs attack eps (training eps {ctx.cfg.target.eps:g})",
    )
    return AttackResult(
        out,
        texts={"tables/ia_sweep.csv": "\n".join(table) + "\n"},
        figures={"plots/ia_sweep.png": fig},
        series=series,
    )


def check_sweep(cfg) -> None:
    eps = list(cfg.attack.eps_list)
    if not eps or not all(0 <= float(e) <= 1 for e in eps):
        raise ConfigError(
            f"attack.eps_list must be a non-empty list of eps in [0, 1] (pixel space), got {eps}"
        )
