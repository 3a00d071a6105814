"""Targeted L_inf PGD towards every wrong class (Song, Shokri, Mittal CCS'19 §3.3.1, eq. 19).

    x'_{t+1} = Proj_{B_eps(x) ∩ [0,1]}( x'_t - eta * sign(grad_x' CE(F(x'_t), y')) )

i.e. signed-gradient *descent* of the cross-entropy towards the target label y' (Madry et al.'s
PGD with the sign flipped): `lit_mia.perturb.pgd.pgd(..., targeted=True)`, which runs the model
in eval mode (modes restored), takes input gradients only and clips to [0,1].

Defaults: those of the attack-time untargeted PGD (`lit_mia.perturb.pgd.AttackPGD`: 20
steps of 2.5*eps/20, no random start), so targeted and untargeted features share eps, steps and
step size. CCS'19 §5.2.5 computes k-1 targeted examples per input, one per incorrect label.

`targeted_logits` does that for N inputs as one stream of N*(k-1) rows (row i*(k-1)+j = input i
towards its j-th wrong class in ascending order), cut into chunks of `batch_size` rows, so every
PGD step is one large batched forward/backward instead of k-1 small ones.

Shapes: x [N, C, H, W] in [0,1], y [N] int64, targets [N, k-1] int64, logits [N, k-1, K].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_mia.errors import ConfigError
from lit_mia.perturb.pgd import check_nonnegative, eval_mode, pgd, require_autograd


def wrong_classes(y: Tensor, n_classes: int) -> Tensor:
    """[N, k-1] the classes other than y[i], ascending, for every row i. y: [N] int64."""
    if n_classes < 2:
        raise ConfigError(f"targeted PGD needs at least 2 classes, got {n_classes}")
    y = y.view(-1).long()
    if y.numel() and (y.min() < 0 or y.max() >= n_classes):
        raise ConfigError(f"labels must lie in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    others = torch.arange(n_classes - 1, device=y.device).expand(y.numel(), -1)  # [N, k-1]
    return others + (others >= y.view(-1, 1)).long()  # skip y: 0..y-1, y+1..k-1


def targeted_pgd(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    eps: float,
    steps: int,
    step_size: float,
    *,
    random_start: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Targeted L_inf PGD (eq. 19): x_adv in B_eps(x) ∩ [0,1] minimising CE(F(x_adv), target).

    target: [N] int64 target labels y'. Returns detached x_adv with x's shape.
    """
    return pgd(
        model,
        x,
        target,
        eps,
        steps,
        step_size,
        random_start=random_start,
        targeted=True,
        generator=generator,
    )


def targeted_logits(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    n_classes: int,
    eps: float,
    steps: int,
    step_size: float,
    *,
    random_start: bool = False,
    batch_size: int = 500,
    device: torch.device | str | None = None,
) -> Tensor:
    """[N, k-1, K] logits of the k-1 targeted PGD examples of every input (CCS'19 §5.2.5).

    Slot j of row i is the example of x[i] pushed towards `wrong_classes(y, k)[i, j]`. The
    N*(k-1) (input, target) rows are processed `batch_size` at a time on `device` (default: the
    model's), without materialising the repeated inputs; logits come back on the CPU.
    eps == 0 or steps == 0: the benign logits repeated k-1 times.
    """
    check_nonnegative(eps=eps, steps=steps, step_size=step_size)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if x.shape[0] != y.shape[0]:
        raise ConfigError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    if eps > 0 and steps > 0:
        require_autograd("targeted_logits")
    device = torch.device(device) if device else next(model.parameters()).device
    targets = wrong_classes(y, n_classes).reshape(-1)  # [N*(k-1)]
    per = n_classes - 1
    n_rows = targets.numel()
    out = torch.empty(n_rows, n_classes)
    with eval_mode(model):
        for start in range(0, n_rows, batch_size):
            rows = torch.arange(start, min(start + batch_size, n_rows))
            xb = x[rows // per].to(device)
            tb = targets[rows].to(device)
            x_adv = targeted_pgd(model, xb, tb, eps, steps, step_size, random_start=random_start)
            with torch.no_grad():
                out[rows] = model(x_adv).float().cpu()
    return out.view(x.shape[0], per, n_classes)


__all__ = ["targeted_logits", "targeted_pgd", "wrong_classes"]
