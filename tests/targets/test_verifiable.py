"""Verifiable targets (ibp, diffai, dual): losses match their references, dual bounds are
sound, schedules hit their boundaries, each fits tiny data, bad settings are ConfigErrors."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from lit_mia import bounds, config
from lit_mia.data.datasets import load_dataset
from lit_mia.errors import ConfigError
from lit_mia.nets import build_net
from lit_mia.perturb.pgd import pgd
from lit_mia.targets import TARGETS, build_target
from lit_mia.targets.verifiable import DualSettings, DualTarget, IBPSettings, IBPTarget, ramp
from tests import helpers

pytestmark = pytest.mark.filterwarnings("ignore")
VERIFIABLE = ("ibp", "diffai", "dual")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def small_net(bundle, name="mlp", seed=0):
    return helpers.small_net(bundle, seed, name, width=0.125 if name == "mlp" else 1 / 64)


def fit(module, bundle, n_train=64, n_val=32, epochs=2, callbacks=()):
    idx, val = np.arange(n_train), np.arange(n_train, n_train + n_val)
    return helpers.fit_tiny(
        module, bundle, idx, epochs, val if n_val else None, callbacks=callbacks
    )


def make(name, net, **kw):
    """A target from the regime's schema defaults, as build_target makes it."""
    cfg = OmegaConf.merge(
        OmegaConf.structured(config.schema(name)),
        {"target": kw, "trainer": {"val_adv_steps": 2}},
    )
    return build_target(cfg, net, torch.arange(64))


# ---------------------------------------------------------------- training
@pytest.mark.parametrize("name", VERIFIABLE)
def test_each_verifiable_target_fits_tiny_data(digits, name):
    pl.seed_everything(0, verbose=False)
    module = make(name, small_net(digits), warmup_epochs=0.5, ramp_epochs=1)
    assert module.adversarial
    assert module.verifiable
    assert type(module) is TARGETS[name]
    x, y = digits.x[:64], digits.y[:64]
    before = F.cross_entropy(module(x), y).item()
    trainer = fit(module, digits, epochs=3)
    after = F.cross_entropy(module(x), y).item()
    assert math.isfinite(after)
    assert after < before
    logged = trainer.callback_metrics
    for key in ("train/loss", "train/eps", "train/robust_loss", "val/acc", "val/ver_acc"):
        assert key in logged, key
        assert math.isfinite(float(logged[key])), key
    assert module.steps_per_epoch == 2
    assert float(logged["train/eps"]) == pytest.approx(0.1)  # ramp ended at epoch 1.5
    assert float(logged["val/ver_acc"]) <= float(logged["val/adv_acc"]) + 1e-6
    if name == "ibp":
        assert float(logged["train/kappa"]) == pytest.approx(0.5)


def test_dual_clips_gradient_norm(digits):
    norms = []

    class Spy(pl.Callback):  # grads stay in .grad until the next step's zero_grad
        def on_train_batch_end(self, trainer, module, *args):
            sq = sum(p.grad.square().sum() for p in module.parameters() if p.grad is not None)
            norms.append(float(sq) ** 0.5)

    pl.seed_everything(0, verbose=False)
    module = make("dual", small_net(digits), grad_clip=1e-3, ramp_epochs=0)
    fit(module, digits, n_val=0, epochs=1, callbacks=[Spy()])
    assert norms
    assert max(norms) <= 1e-3 * (1 + 1e-4)


# ---------------------------------------------------------------- dual bound
@pytest.mark.parametrize("arch", ["mlp", "fmnist_cnn"])
def test_dual_loss_equals_robust_loss(digits, arch):
    from convex_adversarial import robust_loss

    module = make("dual", small_net(digits, arch))
    x, y = digits.x[:16], digits.y[:16]
    torch.manual_seed(5)
    loss, _ = module.training_loss(x, y, torch.arange(16))  # no trainer: the full eps
    folded = bounds.fold_normalize(module.net)
    # fmnist_cnn's stride-2 3x3 convs on 8x8 need the output_padding shim, the mlp does not.
    shim = bounds._conv_shim() if arch == "fmnist_cnn" else contextlib.nullcontext()
    with shim:
        torch.manual_seed(5)
        ref, _ = robust_loss(folded, 0.1, x, y, proj=20, norm_type="l1_median", bounded_input=True)
        ref_exact, _ = robust_loss(folded, 0.1, x, y, bounded_input=True)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    margins = module.margins(x, y, 0.1)
    assert F.cross_entropy(-margins, y).item() == pytest.approx(ref_exact.item(), rel=1e-6)
    module.verify_proj = 20  # the projected estimate: same shape, y entries 0
    est = module.margins(x, y, 0.1)
    assert est.shape == margins.shape
    assert (est.gather(1, y[:, None]) == 0).all()


def test_conv_shim_transpose_is_the_adjoint():
    from convex_adversarial.dual_network import DualNetwork

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1)
    net = torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(48, 2))
    x = torch.rand(2, 2, 8, 8)
    with bounds._conv_shim():
        dual = DualNetwork(net, x, 0.1, bounded_input=True).dual_net[1]
    a, b = torch.randn(5, 2, 8, 8), torch.randn(5, 3, 4, 4)
    lhs = (dual(a) * b).sum()  # <W a, b> = <a, W^T b>
    torch.testing.assert_close(lhs, (a * dual.T(b)).sum(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["mlp", "fmnist_cnn"])
def test_dual_margins_never_beat_pgd(digits, arch):
    module = make("dual", small_net(digits, arch)).eval()
    x, y = digits.x[:24], digits.y[:24]
    eps = 0.05
    lower = -module.worst_case_logits(x, y, eps)  # [B, K] exact dual lower bounds
    pts = [pgd(module.net, x, y, eps, 10, eps / 4, random_start=True)]
    pts += [pgd(module.net, x, torch.full_like(y, j), eps, 10, eps / 4, targeted=True)
            for j in range(10)]  # fmt: skip
    pts += [bounds.input_box(x, eps)[0] + torch.rand_like(x) * 2 * eps for _ in range(5)]
    for p in pts:
        p = torch.min(torch.max(p, bounds.input_box(x, eps)[0]), bounds.input_box(x, eps)[1])
        with torch.no_grad():
            z = module.net(p)
        assert (z.gather(1, y[:, None]) - z >= lower - 1e-4).all()
    ver = module.verified_mask(x, y, eps)
    robust = module.net(pts[0]).argmax(1) == y
    assert not (ver & ~robust).any()
    with torch.no_grad():  # and tight as eps -> 0
        z = module.net(x)
    exact = z.gather(1, y[:, None]) - z
    torch.testing.assert_close(-module.worst_case_logits(x, y, 1e-6), exact, atol=1e-3, rtol=0)


def test_dual_rejects_pooling_net_at_construction(digits):
    net = build_net("lenet_mnist", (1, 16, 16), 10, [0.5], [0.2])
    with pytest.raises(ConfigError, match=r"MaxPool2d \(position 3\) of net lenet_mnist"):
        DualTarget(net, DualSettings(ramp_epochs=0, proj=50), net_name="lenet_mnist")
    IBPTarget(net, IBPSettings(warmup_epochs=0, ramp_epochs=0), net_name="lenet_mnist")  # pools


# ---------------------------------------------------------------- schedules
def test_ramp_boundaries():
    assert ramp(0, 10, 20) == 0
    assert ramp(9.99, 10, 20) == 0
    assert ramp(10, 10, 20) == 0
    assert ramp(20, 10, 20) == 0.5
    assert ramp(30, 10, 20) == 1
    assert ramp(99, 10, 20) == 1
    assert ramp(4, 5, 0) == 0
    assert ramp(5, 5, 0) == 1


def test_ibp_schedule_at_step_boundaries(digits):
    settings = IBPSettings(eps=0.2, warmup_epochs=2, ramp_epochs=4, kappa_start=1.0, kappa_end=0.5)
    module = IBPTarget(small_net(digits), settings)
    assert module.schedule_at(0) == (0.2, 0.5)  # no trainer yet: the finished schedule
    module.steps_per_epoch = 10  # warmup 20 steps, ramp 40 steps
    assert module.schedule_at(0) == (0.0, 1.0)
    assert module.schedule_at(20) == (0.0, 1.0)
    assert module.schedule_at(40) == pytest.approx((0.1, 0.75))
    assert module.schedule_at(50) == pytest.approx((0.15, 0.625))
    assert module.schedule_at(60) == pytest.approx((0.2, 0.5))
    assert module.schedule_at(1000) == pytest.approx((0.2, 0.5))


def test_dual_eps_starts_at_eps_start(digits):
    settings = DualSettings(eps=0.1, eps_start=0.003, warmup_epochs=0, ramp_epochs=20, proj=50)
    module = DualTarget(small_net(digits), settings)
    module.steps_per_epoch = 5
    assert module.schedule_at(0)[0] == pytest.approx(0.003)
    assert module.schedule_at(50)[0] == pytest.approx(0.0515)
    assert module.schedule_at(100)[0] == pytest.approx(0.1)


# ---------------------------------------------------------------- config
def schema_cfg(name, **target):
    """The regime's schema defaults with `target` keys on top and trainer.max_epochs 20."""
    over = {"target": target, "trainer": {"max_epochs": 20}}
    return OmegaConf.merge(OmegaConf.structured(config.schema(name)), over)


@pytest.mark.parametrize("name", VERIFIABLE)
def test_settings_defaults_pass_validation(name):
    cfg = schema_cfg(name)
    TARGETS[name].Settings.validate(cfg.target, cfg)
    config.load("single", [f"target.name={name}", "trainer.max_epochs=20"])


@pytest.mark.parametrize(
    ("name", "key", "value", "match"),
    [
        ("ibp", "kappa_start", 1.5, "target.kappa_start must be in"),
        ("ibp", "kappa_end", -0.1, "target.kappa_end must be in"),
        ("ibp", "warmup_epochs", -1.0, "target.warmup_epochs must be >= 0"),
        ("ibp", "ramp_epochs", 30.0, "warmup_epochs \\+ target.ramp_epochs must be <= trainer.max"),
        ("ibp", "warmup_epochs", 19.5, "must be <= trainer.max_epochs \\(20\\)"),
        ("dual", "proj", 0, "target.proj must be null"),
        ("dual", "proj", -5, "target.proj must be null"),
        ("dual", "verify_proj", 0, "target.verify_proj must be null"),
        ("dual", "norm_type", "l2", "target.norm_type must be one of"),
        ("ibp", "eps_start", 0.5, "target.eps_start must be in"),
        ("ibp", "grad_clip", -1.0, "target.grad_clip must be >= 0"),
    ],
)
def test_bad_settings_are_config_errors(name, key, value, match):
    cfg = schema_cfg(name, **{key: value})
    with pytest.raises(ConfigError, match=match):
        TARGETS[name].Settings.validate(cfg.target, cfg)
    over = [f"target.name={name}", f"target.{key}={value}", "trainer.max_epochs=20"]
    with pytest.raises(ConfigError, match=match):
        config.load("single", over)
