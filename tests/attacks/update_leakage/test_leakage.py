"""Updates-Leak on a small deterministic fixture (issue 11): a real farm (softmax-regression
base models on 300 mnist5k images, 600 shadow / 150 target float64 updates, 40 probes) on which
A_LI, A_SSR and A_LDE beat their strongest trivial baseline by a wide margin and A_MSR beats
the mean image and random samples; with the shadow deltas shuffled (no signal) the decoders
fall to their baselines; the delta representation's invariants; update sets without
replacement and disjoint from every other index set; the held-out epoch selection.

The fixture is built to leak: a softmax regression's one-step update is
-lr (p - e_y) x^T, so the posterior differences on the probes carry the update sample's
inner products with every probe, and base models trained on different data end close to each
other (a convex problem), so what the decoders learn on the shadow bases transfers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_mia.attacks.base import UPDATE_LEAKAGE
from lit_mia.attacks.registry import of_kind
from lit_mia.attacks.update_leakage.ablation import run_ablation
from lit_mia.attacks.update_leakage.multi import counts_from_histogram
from lit_mia.attacks.update_leakage.representation import (
    REPRESENTATIONS,
    features,
    unit_and_lognorm,
)
from lit_mia.attacks.update_leakage.validation import REPRESENTATIONS as CHECKED
from lit_mia.errors import ConfigError
from lit_mia.models.update_farm import FarmSide, farm_facts
from lit_mia.models.update_pools import sample_update_sets, set_usage
from tests.attacks.update_leakage.conftest import updates_context
from tests.helpers.attack_tester import AttackTester

UPDATE_ATTACKS = of_kind(UPDATE_LEAKAGE)


def test_fixture_data_is_honest(update_farms):
    _cfg, _, pools, farms, _ = update_farms
    for k, farm in farms.items():
        facts = farm_facts(farm, pools)
        assert facts["overlap"] == 0
        assert farm.shadow.base_of.unique().tolist() == [0, 1, 2]
        assert torch.isfinite(farm.shadow.deltas).all()
        assert farm.shadow.deltas.dtype == torch.float64
        if k == 1:  # every single-sample update is a distinct image
            assert facts["shadow_distinct"] == 600
            assert facts["shadow_max_use"] == 1
            assert facts["target_distinct"] == 150
            assert facts["target_max_use"] == 1
    assert farms[1].shadow.base_acc > 0.8
    assert farms[1].target.base_acc > 0.8


def test_ablation_steps_every_factor(update_farms):
    cfg, bundle, pools, _, bases = update_farms
    ctx = updates_context(update_farms, 1)
    ctx.u.li.epochs = 8
    a = ctx.u.ablation
    a.attacks, a.n_updates, a.n_bases, a.n_probes = ["a_li"], [60, 600], [1, 3], [4, 40]
    out = run_ablation(cfg, ctx, bundle, pools, bases, None, None)
    for factor, xs in (("n_updates", (60, 600)), ("n_bases", (1, 3)), ("n_probes", (4, 40))):
        for x in xs:  # every point beats the strongest trivial baseline (majority label)
            acc = out[f"ablation/{factor}/a_li_acc_{x}"]
            assert acc > out[f"ablation/{factor}/a_li_acc_majority_{x}"] + 0.2, (factor, x, out)
            assert out[f"ablation/{factor}/a_li_acc_majority_{x}"] < 0.2
    assert out["ablation/n_updates/a_li_acc_600"] > 0.9  # the full shadow side
    assert out["ablation/n_updates/a_li_acc_60"] < out["ablation/n_updates/a_li_acc_600"]
    assert not any("a_ssr" in key for key in out)


# ---------------------------------------------------------------- representation
def _side(deltas: torch.Tensor) -> FarmSide:
    m, d = deltas.shape
    base_logp = torch.log_softmax(torch.randn(1, d // 2, 2, dtype=torch.float64), -1)
    sets = torch.zeros(m, 1, dtype=torch.long)
    return FarmSide(deltas, sets, sets, 0.5, torch.zeros(m, dtype=torch.long), base_logp)


def test_representation_invariants():
    g = torch.Generator().manual_seed(0)
    d = torch.randn(20, 8, generator=g, dtype=torch.float64) * torch.logspace(-9, 0, 20)[:, None]
    d[3] = 0.0  # a zero delta
    ref = _side(d)
    for name in REPRESENTATIONS:
        f = features(name, ref, ref)
        assert f.dtype == torch.float32, name
        assert torch.isfinite(f).all(), name
    unit, ln = unit_and_lognorm(d)
    assert torch.allclose(unit[[0, 5, 19]].norm(dim=1), torch.full((3,), 8**0.5, dtype=d.dtype))
    assert (unit[3] == 0).all()
    assert torch.isfinite(ln).all()
    # scale invariance of the direction; the log-norm moves by exactly log(c)
    for c in (1e-6, 3.0, 1e4):
        u2, ln2 = unit_and_lognorm(d * c)
        torch.testing.assert_close(u2[d.norm(dim=1) > 0], unit[d.norm(dim=1) > 0])
        nz = d.norm(dim=1) > 0
        torch.testing.assert_close(ln2[nz] - ln[nz], torch.full_like(ln[nz], np.log(c)))
    a = features("log_unit", _side(d * 7.0), ref)[:, :-1]
    torch.testing.assert_close(a, features("log_unit", ref, ref)[:, :-1])
    assert CHECKED == REPRESENTATIONS


def test_unknown_representation_lists_valid_ones():
    d = _side(torch.randn(4, 6, dtype=torch.float64))
    with pytest.raises(ConfigError, match=r"log_unit, unit, standardized.*'bogus'"):
        features("bogus", d, d)


# ---------------------------------------------------------------- pools
def test_update_sets_without_replacement_and_balanced():
    pool = np.arange(1000, 1300)
    rng = np.random.default_rng(0)
    one = sample_update_sets(pool, pool % 10, 300, 1, rng, 0.0)
    assert set_usage(one) == (300, 1)  # every sample exactly once
    many = sample_update_sets(pool, pool % 10, 100, 7, rng, 0.0)
    assert all(np.unique(s).size == 7 for s in many)
    _, counts = np.unique(many, return_counts=True)
    assert counts.min() >= 2
    assert counts.max() <= 3
    skew = sample_update_sets(pool, pool % 10, 100, 20, rng, 1.0)
    assert all(np.unique(s).size == 20 for s in skew)
    assert np.isin(skew, pool).all()
    for bad in ((0, 1), (3, 0)):
        with pytest.raises(ConfigError, match="m >= 1"):
            sample_update_sets(pool, pool % 10, *bad, rng, 0.0)


def test_counts_from_histogram():
    assert counts_from_histogram(np.array([0.55, 0.45, 0.0]), 10).tolist() == [6, 4, 0]
    c = counts_from_histogram(np.array([1 / 3, 1 / 3, 1 / 3]), 10)
    assert c.sum() == 10
    assert c.max() - c.min() <= 1


# ---------------------------------------------------------------- the attack contract
class UpdatesTester(AttackTester):
    """The contract on the update farms of conftest.py: each attack against the trivial
    baselines it logs beside its statistic (margins measured on this fixture)."""

    leaking = "update_farms"
    no_signal = "shuffled_update_farms"
    k = 10  # the set size the attack runs at

    def run_attack(self, farms_fixture):
        ctx = updates_context(farms_fixture, self.k)
        return UPDATE_ATTACKS[self.attack].run(ctx)


class TestALIContract(UpdatesTester):
    """A_LI (single-sample label inference): accuracy 0.5 above the majority label, random
    guessing and the norm-only classifier; without signal within 0.1 of them (150 targets:
    sd of a 0.1 rate ~0.025)."""

    attack, k = "a_li", 1
    statistic = "acc"
    baselines = ("acc_majority", "acc_random", "acc_norm_only")
    margin, noise = 0.5, 0.1

    def test_accuracy(self, request):
        assert self.result(request, self.leaking).metrics["acc"] >= 0.9


class TestASSRContract(UpdatesTester):
    """A_SSR (single-sample reconstruction, MLP decoder, epoch chosen on the held-out shadow
    base): MSE 10% below the strongest trivial baseline, the true-class mean image (measured
    0.045 vs 0.055, 12.8 paired standard errors; mean image 0.068)."""

    attack, k = "a_ssr", 1
    statistic = "mse"
    higher_is_better = False
    baselines = ("mse_mean", "mse_class_mean", "mse_label_random", "mse_random")
    margin, noise = 0.1, 0.05

    def test_gain_is_not_noise_and_the_epoch_is_held_out(self, request):
        res = self.result(request, self.leaking)
        m = res.metrics
        assert self.baseline_value(request, self.leaking, m) == m["mse_class_mean"]
        assert m["z_class_mean"] > 4, m  # the gain in paired standard errors: not noise
        assert 0 <= res.facts["updates/a_ssr/best_epoch"] < 60  # ssr.epochs of the fixture
        assert res.facts["updates/a_ssr/n_val"] == 200  # the last of 3 shadow bases: 600 / 3
        assert "plots/a_ssr_reconstructions.png" in res.figures

    def test_at_best_the_mean_image_without_signal(self, request):
        m = self.result(request, self.no_signal).metrics
        assert m["mse"] > 0.95 * m["mse_mean"], m


class TestALDEContract(UpdatesTester):
    """A_LDE (label distribution of a 10-sample update): KL 40% below uniform, the shadow
    mean and random histograms (measured 0.41 vs 0.83). Without signal: slow (a second
    training, ~20 s)."""

    attack = "a_lde"
    statistic = "kl"
    higher_is_better = False
    baselines = ("kl_uniform", "kl_shadow_mean", "kl_random")
    margin, noise = 0.4, 0.05

    def test_accuracy_beats_random(self, request):
        m = self.result(request, self.leaking).metrics
        assert m["acc"] > m["acc_random"] + 0.2

    @pytest.mark.slow
    def test_sits_at_chance_without_signal(self, request):
        super().test_sits_at_chance_without_signal(request)


class TestAMSRContract(UpdatesTester):
    """A_MSR (CBM-GAN, multi-sample reconstruction): below k copies of the mean image and
    random real samples (measured 0.064 vs 0.068 and 0.10); k class means by the predicted
    histogram (0.061) are not beaten. Without signal: slow (a second GAN training)."""

    attack = "a_msr"
    statistic = "mse"
    higher_is_better = False
    baselines = ("mse_random", "mse_mean")
    noise = 0.05

    def test_far_below_random_samples(self, request):
        res = self.result(request, self.leaking)
        m = res.metrics
        assert m["mse"] < 0.75 * m["mse_random"], m
        assert m["mse_class_means_true"] <= m["mse_class_means"] + 1e-9
        assert {"plots/a_msr_training_curve.png", "plots/a_msr_reconstructions_0.png"} <= set(
            res.figures
        )

    @pytest.mark.slow
    @pytest.mark.xfail(
        strict=True,
        reason="measured: with the shadow deltas shuffled A_MSR still reaches MSE 0.0636 "
        "against 0.0678 for k copies of the mean image, as much as with signal (0.064): on this "
        "fixture its gain over the mean image does not come from the update, so the mean image "
        "is not its strongest trivial baseline (a set of k distinct plausible images matched "
        "optimally beats k copies of one); strict, so a fix that makes it pass is noticed",
    )
    def test_sits_at_chance_without_signal(self, request):
        super().test_sits_at_chance_without_signal(request)
