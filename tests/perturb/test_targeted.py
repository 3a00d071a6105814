"""Targeted L_inf PGD (CCS'19 eq. 19) and its batched all-targets helper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_mia.errors import ConfigError
from lit_mia.perturb.targeted import targeted_logits, targeted_pgd, wrong_classes


def easy_model(k: int = 4, d: int = 6) -> nn.Module:
    """Logits linear in the mean pixel of d groups: a model that every target is easy for."""
    torch.manual_seed(0)
    lin = nn.Linear(d, k)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(k, d) * 20)
    return nn.Sequential(nn.Flatten(), lin)


def test_wrong_classes_lists_the_other_labels_in_order():
    y = torch.tensor([0, 2, 3])
    assert wrong_classes(y, 4).tolist() == [[1, 2, 3], [0, 1, 3], [0, 1, 2]]
    with pytest.raises(ConfigError, match="labels"):
        wrong_classes(torch.tensor([4]), 4)


def test_targeted_pgd_reaches_target_and_stays_in_ball():
    model = easy_model()
    x = torch.rand(32, 1, 2, 3)
    y = model(x).argmax(1)
    target = (y + 1) % 4
    eps = 0.5
    x_adv = targeted_pgd(model, x, target, eps, steps=40, step_size=0.05)
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    with torch.no_grad():
        hit = (model(x_adv).argmax(1) == target).float().mean()
        ce0 = nn.functional.cross_entropy(model(x), target)
        ce1 = nn.functional.cross_entropy(model(x_adv), target)
    assert hit >= 0.9
    assert ce1 < ce0


def test_targeted_pgd_restores_training_mode_and_leaves_grads():
    model = easy_model().train()
    x = torch.rand(4, 1, 2, 3)
    targeted_pgd(model, x, torch.zeros(4, dtype=torch.long), 0.1, 3, 0.05)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_batched_targeted_logits_match_one_call_per_target():
    model = easy_model()
    x = torch.rand(5, 1, 2, 3)
    y = torch.tensor([0, 1, 2, 3, 1])
    args = dict(eps=0.2, steps=5, step_size=0.05)
    z = targeted_logits(model, x, y, 4, batch_size=7, **args)  # chunks cut across inputs
    assert z.shape == (5, 3, 4)
    t = wrong_classes(y, 4)
    for j in range(3):
        ref = model(targeted_pgd(model, x, t[:, j], **args)).detach()
        torch.testing.assert_close(z[:, j], ref)


def test_zero_eps_gives_benign_logits():
    model = easy_model()
    x = torch.rand(3, 1, 2, 3)
    z = targeted_logits(model, x, torch.tensor([0, 1, 2]), 4, eps=0.0, steps=20, step_size=0.0)
    torch.testing.assert_close(z, model(x).detach().unsqueeze(1).expand(-1, 3, -1))
