"""Countermeasures for any regime: temperature, DA, L1/L2, augmentation, DP-SGD (opacus)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from lit_mia import config
from lit_mia.data.datamodule import AUGMENTATIONS, MembershipDataModule, augment_batch
from lit_mia.data.datasets import load_dataset
from lit_mia.errors import ConfigError
from lit_mia.nets import Normalize
from lit_mia.perturb.pgd import pgd
from lit_mia.predictor import Predictor
from lit_mia.targets import NaturalTarget, PGDSettings, PGDTarget, TradesSettings, TradesTarget
from lit_mia.targets.base import TargetSettings
from lit_mia.targets.regularizers import da_regularizer, weight_l1, weight_l2
from tests.helpers.training import fit_tiny, small_net

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


class EpochMetrics(pl.Callback):
    """Records trainer.callback_metrics[key] as logged at the end of every training epoch
    (callbacks' on_train_epoch_end runs before the module's, so read it one hook later)."""

    def __init__(self, key: str) -> None:
        self.key, self.values = key, []

    def _record(self, trainer) -> None:
        if self.key in trainer.callback_metrics:
            self.values.append(float(trainer.callback_metrics[self.key]))

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0:
            self._record(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._record(trainer)


def train(module, bundle, idx, epochs=2, augment="none", callbacks=()):
    return fit_tiny(module, bundle, idx, epochs=epochs, augment=augment, callbacks=callbacks)


def weights_after(bundle, cls=NaturalTarget, epochs=2, augment="none", settings=None, **kw):
    """Weights after a short fit; `settings`, else `cls.Settings(**kw)`."""
    pl.seed_everything(0, verbose=False)
    module = cls(small_net(bundle), settings if settings is not None else cls.Settings(**kw))
    train(module, bundle, np.arange(96), epochs=epochs, augment=augment)
    return module.net.state_dict()


def same(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- temperature
def test_temperature_scales_prediction_logits_only(digits):
    net = small_net(digits).eval()
    x = digits.x[:64]
    mod = NaturalTarget(net, TargetSettings(temperature=4.0)).eval()
    with torch.no_grad():
        raw, scaled = net(x), mod(x)
    assert torch.equal(scaled, raw / 4.0)
    assert torch.equal(scaled.argmax(1), raw.argmax(1))
    assert (F.softmax(scaled, 1).max(1).values < F.softmax(raw, 1).max(1).values).all()
    assert torch.equal(NaturalTarget(net)(x), raw)  # T = 1: forward is net(x)
    # attacks read the module: the Predictor's logits are the scaled ones
    pred = Predictor(mod, {"s": (x, digits.y[:64])}, batch_size=16)
    assert torch.allclose(pred.logits("s"), raw / 4.0)
    # training sees raw logits: same weights with and without T
    assert same(weights_after(digits), weights_after(digits, settings=mod.settings))


# ---------------------------------------------------------------- DA regularisation
def test_da_regularizer_matches_hand_computation():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(20, 5, generator=g), torch.randn(20, 5, generator=g) * 2 + 1
    assert da_regularizer(a, a.clone()).item() == 0.0
    an, bn = a.double().numpy(), b.double().numpy()
    ref = (
        np.abs(an.mean(0) - bn.mean(0)).sum() / 5
        + np.abs(np.cov(an, rowvar=False) - np.cov(bn, rowvar=False)).sum() / 25
    )
    assert da_regularizer(a, b).item() == pytest.approx(ref, rel=1e-5)
    assert da_regularizer(a, b) > 0
    assert da_regularizer(a, a + 0.1) > 0
    with pytest.raises(ValueError, match="one shape"):
        da_regularizer(a, b[:10])


def test_da_weight_zero_leaves_training_unchanged_and_positive_weight_changes_it(digits):
    pgd_kw = dict(eps=0.1, steps=2, step_size=0.05, epochs=1)
    plain = weights_after(digits, PGDTarget, **pgd_kw)
    assert same(plain, weights_after(digits, PGDTarget, da_weight=0.0, **pgd_kw))
    assert not same(plain, weights_after(digits, PGDTarget, da_weight=1.0, **pgd_kw))


def test_da_loss_uses_the_regimes_adversarial_examples(digits):
    net = small_net(digits)
    x, y, idx = digits.x[:32], digits.y[:32], torch.arange(32)
    cm = TargetSettings(da_weight=2.0, eps=0.1, steps=3, step_size=0.05)
    mod = NaturalTarget(net, cm, seed=3)  # natural: PGD at target.eps
    loss = mod.training_step((x, y, idx), 0)
    x_adv = pgd(
        net, x, y, 0.1, 3, 0.05, random_start=True, generator=torch.Generator().manual_seed(3)
    )
    expected = F.cross_entropy(net(x), y) + 2.0 * da_regularizer(net(x), net(x_adv))
    assert torch.allclose(loss, expected, atol=1e-6)
    # a regime with its own adversary: DA reuses the adversarial batch of the step (one attack)
    tr = TradesTarget(net, TradesSettings(da_weight=2.0, eps=0.1, steps=3, step_size=0.02))
    calls = []
    original = tr.adversarial_examples
    tr.adversarial_examples = lambda *a: calls.append(1) or original(*a)
    tr.training_step((x, y, idx), 0)
    assert len(calls) == 1


# ---------------------------------------------------------------- L1 / L2
def test_weight_penalties_match_hand_computation_and_change_training(digits):
    net = small_net(digits)
    mats = [m.weight for m in net.modules() if isinstance(m, nn.Linear)]
    assert weight_l1(net).item() == pytest.approx(sum(w.abs().sum().item() for w in mats), 1e-5)
    assert weight_l2(net).item() == pytest.approx(sum((w**2).sum().item() for w in mats), 1e-5)
    x, y, idx = digits.x[:32], digits.y[:32], torch.arange(32)
    mod = NaturalTarget(net, TargetSettings(l1=1e-3, l2=0.05))
    expected = F.cross_entropy(net(x), y) + 1e-3 * weight_l1(net) + 0.05 * weight_l2(net)
    assert torch.allclose(mod.training_step((x, y, idx), 0), expected)
    plain = weights_after(digits)
    for cm in (TargetSettings(l1=5e-3), TargetSettings(l2=0.1)):
        assert not same(plain, weights_after(digits, settings=cm))


# ---------------------------------------------------------------- augmentation
@pytest.mark.parametrize("mode", ["shift", "flip_shift"])
def test_augment_batch_in_box_deterministic_and_changes(digits, mode):
    x = digits.x[:64]
    out = augment_batch(x, mode, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert out.min() >= 0
    assert out.max() <= 1
    assert torch.equal(out, augment_batch(x, mode, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, augment_batch(x, mode, torch.Generator().manual_seed(1)))
    assert not torch.equal(out, x)
    assert (out.sum((1, 2, 3)) <= x.sum((1, 2, 3)) + 1e-4).all()  # shifted out, zero fill
    assert augment_batch(x, "none", torch.Generator()) is x


def test_augmented_train_loader(digits):
    def first_batch(augment, seed=0):
        dm = MembershipDataModule(digits, np.arange(96), None, batch_size=32, seed=seed,
                                  augment=augment)  # fmt: skip
        return next(iter(dm.train_dataloader()))

    x0, y0, i0 = first_batch("none")
    x1, y1, i1 = first_batch("flip_shift")
    assert torch.equal(y0, y1)
    assert torch.equal(i0, i1)
    assert not torch.equal(x0, x1)
    assert torch.equal(x1, first_batch("flip_shift")[0])
    assert torch.equal(x0, digits.x[i0])  # validation/no-augment path untouched
    assert set(AUGMENTATIONS) == {"none", "shift", "flip_shift"}
    assert not same(weights_after(digits), weights_after(digits, augment="shift"))
    with pytest.raises(ConfigError, match=r"data.augment"):
        MembershipDataModule(digits, np.arange(8), augment="rotate")
    with pytest.raises(ConfigError, match=r"data.augment"):
        config.load("single", ["data.augment=rotate"])


# ---------------------------------------------------------------- DP-SGD (opacus)
def test_dp_epsilon_finite_and_growing(digits):
    cb = EpochMetrics("train/dp_epsilon")
    pl.seed_everything(0, verbose=False)
    cm = PGDSettings(
        eps=0.1, steps=2, step_size=0.05, dp_noise_multiplier=1.1, dp_max_grad_norm=1.0
    )
    mod = PGDTarget(small_net(digits), cm)
    train(mod, digits, np.arange(96), epochs=3, callbacks=[cb])
    assert len(cb.values) == 3
    assert all(math.isfinite(e) and e > 0 for e in cb.values)
    assert cb.values[0] < cb.values[1] < cb.values[2]
    assert mod.dp_epsilon == pytest.approx(cb.values[-1])
    # hooks are gone after fit: attacks on the trained net run plain
    x, y = digits.x[:16], digits.y[:16]
    pgd(mod.net, x, y, 0.1, 2, 0.05)
    assert not any(hasattr(p, "grad_sample") for p in mod.net.parameters())


@pytest.mark.parametrize("cls", [NaturalTarget, TradesTarget])
def test_dp_without_noise_or_clipping_is_plain_sgd(digits, cls):
    """Per-sample gradients (also with a train-mode forward after an eval-mode attack) sum to the
    batch gradient: negligible noise and a huge clip norm give ordinary SGD."""
    kw = dict(optimizer="sgd", lr=0.1, momentum=0.0)
    if cls is TradesTarget:
        kw.update(eps=0.1, steps=2, step_size=0.05)
    plain = weights_after(digits, cls, epochs=1, **kw)
    dp = weights_after(digits, cls, epochs=1, dp_noise_multiplier=1e-12, dp_max_grad_norm=1e6, **kw)
    for k in plain:
        assert torch.allclose(plain[k], dp[k], atol=1e-5), k
    clipped = weights_after(digits, cls, epochs=1, dp_noise_multiplier=1e-12,
                            dp_max_grad_norm=1e-3, **kw)  # fmt: skip
    assert not all(torch.allclose(plain[k], clipped[k], atol=1e-5) for k in plain)


def test_dp_rejects_batchnorm_naming_the_layer():
    net = nn.Sequential(
        Normalize([0.5], [0.25]), nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 6 * 6, 10),
    )  # fmt: skip
    cm = TargetSettings(dp_noise_multiplier=1.0)
    with pytest.raises(ConfigError, match=r"layer 2 \(BatchNorm2d\)"):
        NaturalTarget(net, cm)
    NaturalTarget(net)  # fine without DP


# ---------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("override", "key"),
    [
        (["target.temperature=0"], "target.temperature"),
        (["target.da_weight=-1"], "target.da_weight"),
        (["target.l1=-0.1"], "target.l1"),
        (["target.l2=-0.1"], "target.l2"),
        (["target.dp_noise_multiplier=-1"], "target.dp_noise_multiplier"),
        (["target.dp_max_grad_norm=0"], "target.dp_max_grad_norm"),
        (["target.dp_delta=1"], "target.dp_delta"),
        (["target.da_weight=1"], "target.da_weight"),  # natural with eps 0: no adv examples
        (["target=pgd", "target.dp_noise_multiplier=1", "target.l2=0.01"], "target.l2"),
        (["target=pgd", "target.dp_noise_multiplier=1", "target.da_weight=1"], "target.da_weight"),
        (["target.dp_noise_multiplier=1", "trainer=ddp"], "trainer.devices"),
    ],
)
def test_countermeasure_config_errors(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.load("single", override)


def test_countermeasure_config_defaults_and_build():
    from lit_mia.targets import build_target

    over = ["target=pgd", "data=digits", "target.temperature=2", "target.da_weight=0.5"]
    cfg = config.load("single", over)
    cm = PGDSettings(**OmegaConf.to_container(cfg.target, resolve=True))
    assert (cm.temperature, cm.da_weight, cm.dp) == (2.0, 0.5, False)
    assert (cm.eps, cm.steps, cm.step_size) == (0.1, 8, 0.02)  # the PGD that DA reuses
    bundle = load_dataset("digits")
    assert build_target(cfg, small_net(bundle)).settings == cm
    d = config.load("single", ["target=natural"]).target
    assert (d.temperature, d.da_weight, d.l1, d.l2, d.dp_noise_multiplier) == (1, 0, 0, 0, 0)
