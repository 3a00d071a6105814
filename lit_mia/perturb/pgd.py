"""L_inf projected gradient descent (PGD), untargeted and targeted.

Madry, Makelov, Schmidt, Tsipras, Vladu. "Towards Deep Learning Models Resistant to Adversarial
Attacks", ICLR 2018.

Threat model: white box, L_inf ball of radius `eps` around x, intersected with the image box
[0,1]. Everything is in pixel space: the net normalises inputs in its first layer
(docs/explanation/measurement.md).

Each step (sign = +1 untargeted, -1 targeted):

    x' <- clip_[0,1]( Proj_{||x' - x||_inf <= eps}( x' + sign * step_size * sign(grad_x' L) ) )

with L = cross-entropy summed over the batch (or `loss_fn`). Untargeted PGD ascends the loss at
the true labels `y`; targeted PGD descends it towards the target labels `y`.

Defaults (docs/reference/paper-defaults.md, Song et al. CCS'19 released code):
- training, FMNIST: eps 0.1, 8 steps, step 0.02, random start; CIFAR-10: eps 8/255, 10 steps,
  step 2/255, random start.
- attack time (I_A): 20 steps, step 2.5 * eps / 20, no random start -> `AttackPGD` (the
  settings of `attack.eps/steps/step_size/random_start`) and `pgd_args`.

Shapes: x (N, *) float in [0,1], y (N,) int64 labels (or whatever `loss_fn` takes as its second
argument), returns x_adv with x's shape, dtype and device, detached.

Invariants: the model runs in eval mode during the attack and every submodule gets its own
training flag back afterwards, also on error; gradients come from `torch.autograd.grad` on the
input only, so parameter `.grad` is never touched and no weight-gradient kernels run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.errors import ConfigError
from lit_mia.perturb.settings import AttackPGD, check_nonnegative, pgd_args  # noqa: F401

LossFn = Callable[[Tensor, Tensor], Tensor]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside; every submodule's own training flag restored after (also on error)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def require_autograd(fn_name: str) -> None:
    """Input-gradient attacks cannot run under inference mode: say how to fix it."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            f"{fn_name} needs autograd but inference mode is on; "
            "use Trainer(inference_mode=False) when attacking inside validate/test"
        )


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    steps: int,
    step_size: float,
    *,
    random_start: bool = False,
    targeted: bool = False,
    loss_fn: LossFn | None = None,
    generator: torch.Generator | None = None,
    start: Tensor | None = None,
) -> Tensor:
    """L_inf PGD around x; returns detached x_adv with ||x_adv - x||_inf <= eps, x_adv in [0,1].

    Args:
        model: maps x (N, *) to logits (N, K). Put in eval mode for the attack, modes restored.
        x: clean inputs in [0,1], (N, *). Not modified.
        y: true labels (untargeted) or target labels (targeted), (N,). Passed unchanged to
            `loss_fn`, so a custom loss may take other tensors here (e.g. clean probabilities
            for the TRADES KL).
        eps: radius of the L_inf ball, pixel space. eps == 0 returns x.clone().
        steps: number of signed-gradient steps. steps == 0 returns x.clone().
        step_size: size of each step, pixel space.
        random_start: start from x + U[-eps, eps] (clipped to [0,1]) drawn from `generator`.
        targeted: descend the loss towards `y` instead of ascending it away from `y`.
        loss_fn: loss_fn(logits_adv, y) -> scalar to ascend (descend if targeted); default
            cross-entropy summed over the batch. A non-scalar result is summed. Only the sign of
            the gradient is used, so sum vs mean does not change the step.
        generator: random source for the start; may live on another device than x.
        start: explicit starting point (x's shape), projected onto the eps-ball ∩ [0,1]; takes
            precedence over `random_start` (TRADES starts at x + 0.001 * N(0, 1)).
    """
    check_nonnegative(eps=eps, steps=steps, step_size=step_size)
    x = x.detach()
    if eps == 0 or steps == 0:
        return x.clone()
    require_autograd("pgd")
    if loss_fn is None:
        loss_fn = _sum_cross_entropy
    direction = -1.0 if targeted else 1.0
    lower, upper = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)  # ball ∩ box, (N, *)

    x_adv = x.clone()
    if start is not None:
        x_adv = torch.min(torch.max(start.detach().to(x), lower), upper)
    elif random_start:
        gen_device = generator.device if generator is not None else x.device
        noise = torch.rand(x.shape, generator=generator, device=gen_device, dtype=x.dtype)
        x_adv = torch.min(torch.max(x_adv + (2 * noise.to(x.device) - 1) * eps, lower), upper)

    with eval_mode(model), torch.enable_grad():
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = loss_fn(model(x_adv), y)
            if loss.dim() > 0:
                loss = loss.sum()
            # Gradient w.r.t. the input only: parameter .grad stays as it was, and autograd
            # skips the weight-gradient kernels because no parameter is asked for.
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = x_adv.detach() + direction * step_size * grad.sign()
            x_adv = torch.min(torch.max(x_adv, lower), upper)
    return x_adv.detach()


def batched(
    fn: Callable[..., Tensor],
    x: Tensor,
    y: Tensor,
    batch_size: int,
    *,
    device: torch.device | str | None = None,
    **kwargs,
) -> Tensor:
    """Apply `fn(x=x_chunk, y=y_chunk, **kwargs)` over chunks of `batch_size` rows, in order.

    Keeps memory bounded for large sets: e.g.
    `batched(pgd, x, y, 256, model=net, **AttackPGD(eps=0.1).args())`.
    Chunks are moved to `device` (default: x's device) before the call; results are written
    back on x's device into one preallocated tensor (N, *result_shape[1:]).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if x.shape[0] != y.shape[0]:
        raise ConfigError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    device = x.device if device is None else torch.device(device)
    n = x.shape[0]
    if n == 0:
        return fn(x=x.to(device), y=y.to(device), **kwargs).to(x.device)
    out: Tensor | None = None
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        result = fn(x=x[start:stop].to(device), y=y[start:stop].to(device), **kwargs).detach()
        if out is None:
            out = result.new_empty((n, *result.shape[1:]), device=x.device)
        out[start:stop] = result
    return out


def _sum_cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y, reduction="sum")
