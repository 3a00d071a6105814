"""TRADES and distributional (Sinha) training: the CCS'19 released formulas, on tiny data."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from lit_mia import config
from lit_mia.data.datasets import load_dataset
from lit_mia.errors import ConfigError
from lit_mia.perturb.distributional import sinha_linf_ascent
from lit_mia.targets import (
    DistSettings,
    DistTarget,
    NaturalTarget,
    TradesSettings,
    TradesTarget,
    build_target,
)
from lit_mia.targets.trades import kl_to_clean, trades_adversary
from tests.helpers.training import fit_tiny, small_net

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def train(module, bundle, idx, epochs=2, val_idx=None):
    return fit_tiny(module, bundle, idx, epochs=epochs, val_idx=val_idx)


def state_after(module_cls, bundle, idx, **kw):
    """Weights after a short fit with settings `module_cls.Settings(**kw)`."""
    pl.seed_everything(0, verbose=False)
    module = module_cls(small_net(bundle), module_cls.Settings(**kw))
    train(module, bundle, idx)
    return module.net.state_dict()


# ---------------------------------------------------------------- TRADES
def test_trades_beta_zero_equals_natural(digits):
    idx = np.arange(96)
    nat = state_after(NaturalTarget, digits, idx)
    trades0 = state_after(TradesTarget, digits, idx, beta=0.0, eps=0.1, steps=3, step_size=0.05)
    for k in nat:
        assert torch.equal(nat[k], trades0[k]), k
    trades1 = state_after(TradesTarget, digits, idx, beta=1.0, eps=0.1, steps=3, step_size=0.05)
    assert any(not torch.equal(nat[k], trades1[k]) for k in nat)


def test_trades_inner_attack_increases_kl(digits):
    net = small_net(digits).eval()
    x = digits.x[:64]
    with torch.no_grad():
        p_clean = F.softmax(net(x), 1)
    start = x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    x_adv = trades_adversary(net.train(), x, 0.1, 8, 0.02, torch.Generator().manual_seed(0))
    assert net.training  # mode restored
    with torch.no_grad():
        kl_start = kl_to_clean(net.eval()(start.clamp(0, 1)), p_clean)
        kl_adv = kl_to_clean(net(x_adv), p_clean)
    assert kl_adv > 10 * kl_start
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    again = trades_adversary(net, x, 0.1, 8, 0.02, torch.Generator().manual_seed(0))
    assert torch.equal(x_adv, again)


def test_trades_loss_is_ce_plus_beta_batchmean_kl(digits):
    net = small_net(digits)
    x, y, idx = digits.x[:32], digits.y[:32], torch.arange(32)
    mod = TradesTarget(net, TradesSettings(beta=6.0, eps=0.1, steps=4, step_size=0.03), seed=5)
    loss, logits = mod.training_loss(x, y, idx)
    x_adv = trades_adversary(net, x, 0.1, 4, 0.03, torch.Generator().manual_seed(5))
    p = F.softmax(net(x), 1)
    kl = (p * (p.log() - F.log_softmax(net(x_adv), 1))).sum(1).mean()  # KL(F(x) || F(x_adv))
    expected = F.cross_entropy(net(x), y) + 6.0 * kl
    assert torch.allclose(loss, expected, atol=1e-5)
    assert torch.allclose(logits, net(x))


# ---------------------------------------------------------------- distributional
def released_ascent(net, x, y, steps, a):
    """The CCS'19 released LinfWRMAttack.perturb, numpy, gradients of the summed CE."""
    x_nat = x.numpy().copy()
    xs = x_nat.copy()
    net.eval()
    for _ in range(steps):
        xt = torch.tensor(xs, requires_grad=True)
        (g,) = torch.autograd.grad(F.cross_entropy(net(xt), y, reduction="sum"), xt)
        grad1 = a * g.numpy()
        grad2 = np.mean(np.absolute(grad1)) * np.sign(xs + grad1 - x_nat)
        xs = np.clip(xs + grad1 - grad2, 0, 1)
    return torch.tensor(xs)


def test_dist_ascent_matches_released_code_and_stays_in_box(digits):
    net = small_net(digits)
    x, y = digits.x[:48], digits.y[:48]
    x_adv = sinha_linf_ascent(net, x, y, steps=8, step_size=1.0)
    assert net.training  # eval during the ascent, mode restored
    assert all(p.grad is None for p in net.parameters())
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    assert torch.equal(x_adv, sinha_linf_ascent(net, x, y, steps=8, step_size=1.0))
    ref = released_ascent(net, x, y, 8, 1.0)
    assert torch.allclose(x_adv, ref, atol=1e-5)
    net.eval()
    with torch.no_grad():
        assert F.cross_entropy(net(x_adv), y) > F.cross_entropy(net(x), y) + 0.1
    assert torch.equal(sinha_linf_ascent(net, x, y, 0, 1.0), x)
    with pytest.raises(ConfigError):
        sinha_linf_ascent(net, x, y, -1, 1.0)


def test_dist_trains_on_ascent_examples(digits):
    net = small_net(digits)
    x, y, idx = digits.x[:32], digits.y[:32], torch.arange(32)
    loss, _ = DistTarget(net, DistSettings(steps=5, dist_step_size=1.0)).training_loss(x, y, idx)
    x_adv = sinha_linf_ascent(net, x, y, 5, 1.0)
    assert torch.allclose(loss, F.cross_entropy(net(x_adv), y))


# ---------------------------------------------------------------- through the config
@pytest.mark.parametrize("name", ["natural", "pgd", "trades", "dist"])
def test_regime_fits_with_dropout_and_logs(digits, name):
    over = [f"target.name={name}", "data=digits", "net.dropout=0.3", "target.steps=3"]
    cfg = config.load("single", over)
    idx = torch.arange(128)
    pl.seed_everything(0, verbose=False)
    net = small_net(digits, dropout=cfg.net.dropout)
    assert any(isinstance(m, torch.nn.Dropout) for m in net.modules())
    module = build_target(cfg, net, idx)
    x, y = digits.x[:128], digits.y[:128]
    module.eval()
    before = F.cross_entropy(module(x), y).item()
    trainer = train(module, digits, idx.numpy(), epochs=6, val_idx=np.arange(128, 160))
    module.eval()
    assert F.cross_entropy(module(x), y).item() < before
    for key in ("train/loss", "train/acc", "val/acc", "val/adv_acc"):
        assert key in trainer.callback_metrics, key


def test_trades_and_dist_configs(digits):
    trades = config.load("single", ["target=trades", "data=digits"]).target
    assert (trades.beta, trades.eps, trades.steps, trades.step_size) == (1.0, 0.1, 8, 0.02)
    dist = config.load("single", ["target=dist", "data=digits"])
    assert (dist.target.steps, dist.target.dist_step_size, dist.target.eps) == (8, 1.0, 0.1)
    from lit_mia.targets import eval_eps

    assert eval_eps(dist) == 0.1  # dist models are evaluated at target.eps
    with pytest.raises(ConfigError, match=r"target.beta"):
        config.load("single", ["target=trades", "target.beta=-1"])
    with pytest.raises(ConfigError, match=r"target.dist_step_size"):
        config.load("single", ["target=dist", "target.dist_step_size=-0.5"])
