"""Target LightningModules: each fits on tiny data; mixed PGD is what CCS'19 Table 5 says."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from lit_mia import config
from lit_mia.data.datasets import load_dataset
from lit_mia.nets import build_net
from lit_mia.targets import TARGETS, NaturalTarget, PGDSettings, PGDTarget, build_target
from tests.helpers.training import fit_tiny, small_net

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def train(module, bundle, idx, epochs=3, val_idx=None):
    return fit_tiny(module, bundle, idx, epochs=epochs, val_idx=val_idx)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_target_fits_tiny_data(digits, name):
    cfg = config.load("single", [f"target.name={name}", "data=digits"])
    idx = torch.arange(128)
    pl.seed_everything(0, verbose=False)
    module = build_target(cfg, small_net(digits), idx)
    x, y = digits.x[:128], digits.y[:128]
    before = F.cross_entropy(module(x), y).item()
    trainer = train(module, digits, idx.numpy(), epochs=8, val_idx=torch.arange(128, 160).numpy())
    after = F.cross_entropy(module(x), y).item()
    assert after < before
    logged = trainer.callback_metrics
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "val/adv_acc"):
        assert key in logged, key
    assert float(logged["val/adv_acc"]) <= float(logged["val/acc"]) + 1e-6


def state_after(module_cls, bundle, idx, settings=None):
    pl.seed_everything(0, verbose=False)
    module = module_cls(small_net(bundle), settings, train_idx=torch.as_tensor(idx))
    train(module, bundle, idx, epochs=2)
    return module.net.state_dict()


def test_pgd_with_ratio_zero_equals_natural(digits):
    idx = torch.arange(96).numpy()
    nat = state_after(NaturalTarget, digits, idx)
    mixed = state_after(
        PGDTarget, digits, idx, PGDSettings(eps=0.1, steps=3, step_size=0.05, ratio=0.0)
    )
    for k in nat:
        assert torch.equal(nat[k], mixed[k]), k


def test_pgd_with_eps_zero_equals_natural(digits):
    idx = torch.arange(96).numpy()
    nat = state_after(NaturalTarget, digits, idx)
    pgd0 = state_after(PGDTarget, digits, idx, PGDSettings(eps=0.0, steps=3, step_size=0.05))
    for k in nat:
        assert torch.equal(nat[k], pgd0[k]), k


def test_pgd_training_changes_the_model(digits):
    idx = torch.arange(96).numpy()
    nat = state_after(NaturalTarget, digits, idx)
    adv = state_after(PGDTarget, digits, idx, PGDSettings(eps=0.1, steps=3, step_size=0.05))
    assert any(not torch.equal(nat[k], adv[k]) for k in nat)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_mixed_pgd_fixed_subset(digits, ratio):
    train_idx = torch.arange(10, 210)
    mod = PGDTarget(small_net(digits), PGDSettings(ratio=ratio), train_idx=train_idx, seed=3)
    again = PGDTarget(small_net(digits), PGDSettings(ratio=ratio), train_idx=train_idx, seed=3)
    other = PGDTarget(small_net(digits), PGDSettings(ratio=ratio), train_idx=train_idx, seed=4)
    robust = mod.robust_idx
    assert len(robust) == round(ratio * 200)
    assert set(robust.tolist()) <= set(train_idx.tolist())
    assert torch.equal(robust, again.robust_idx)
    assert not torch.equal(robust, other.robust_idx)
    # the mask picks exactly the rows of the batch that are in the subset
    batch = train_idx[::3]
    mask = mod._robust_mask(batch)
    assert mask.tolist() == [i in set(robust.tolist()) for i in batch.tolist()]


def test_robust_loss_uses_pgd_examples(digits):
    torch.manual_seed(0)
    net = small_net(digits)
    x, y, idx = digits.x[:64], digits.y[:64], torch.arange(64)
    adv = PGDTarget(net, PGDSettings(eps=0.2, steps=5, step_size=0.05, random_start=False))
    nat = NaturalTarget(net)
    loss_adv, _ = adv.training_loss(x, y, idx)
    loss_nat, _ = nat.training_loss(x, y, idx)
    assert loss_adv > loss_nat
    half = PGDTarget(
        net,
        PGDSettings(
            eps=0.2, steps=5, step_size=0.05, random_start=False, ratio=0.5, ratio_mode="batch"
        ),
        seed=0,
    )
    loss_half, _ = half.training_loss(x, y, idx)
    assert loss_nat < loss_half < loss_adv


def test_build_target_reads_config():
    cfg = config.load("single", ["target=pgd", "target.eps=0.2", "target.steps=4"])
    bundle = load_dataset("mnist5k")
    net = build_net("lenet_mnist", bundle.shape, 10, bundle.mean, bundle.std)
    mod = build_target(cfg, net, torch.arange(10))
    assert isinstance(mod, PGDTarget)
    assert (mod.eps, mod.steps, mod.step_size, mod.eval_eps) == (0.2, 4, 0.02, 0.2)
    nat = build_target(config.load("single", ["attack.eps=0.3"]), net)
    assert isinstance(nat, NaturalTarget)
    assert nat.eval_eps == 0.3
