"""The update-leakage tests' fixtures (issue 11): a real farm built to leak and the same farm
with nothing to learn, shared by the attacks' `AttackTester` subclasses
(tests/attacks/update_leakage/test_leakage.py) and the farm tests.

The leaking farm: softmax-regression base models on 300 mnist5k images, 600 shadow / 150
target float64 updates, 40 probes, set sizes 1 and 10. A softmax regression's one-step update
is -lr (p - e_y) x^T, so the posterior differences on the probes carry the update sample's
inner products with every probe, and base models trained on different data end close to each
other (a convex problem), so what the decoders learn on the shadow bases transfers.

The no-signal farm: the same, with the shadow deltas shuffled against their update samples
(the decoders see deltas that say nothing about their sets); the autoencoder of A_SSR trains
one epoch there (it feeds only the oracle baseline).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from lit_mia.attacks.update_leakage.context import UpdatesContext
from lit_mia.attacks.update_leakage.settings import UpdatesSettings
from lit_mia.data.datasets import DatasetBundle, load_dataset
from lit_mia.models.update_farm import BaseModels, build_farm
from lit_mia.models.update_pools import make_pools


def _mnist() -> DatasetBundle:
    return load_dataset("mnist5k")


def _fit_linear(bundle):
    """A softmax-regression base model trained with plain Adam (deterministic, < 1 s)."""

    def fit(idx, seed):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        x, y = bundle.x[torch.as_tensor(idx)], bundle.y[torch.as_tensor(idx)]
        g = torch.Generator().manual_seed(seed)
        for _ in range(15):
            for b in torch.randperm(len(y), generator=g).split(64):
                opt.zero_grad()
                F.cross_entropy(net(x[b]), y[b]).backward()
                opt.step()
        return net.eval()

    return fit


def _settings(**kw) -> UpdatesSettings:
    u = UpdatesSettings(
        m_shadow=600, m_target=150, n_probe=40, base_size=300, shadow_pool=600,
        target_pool=150, n_shadow_bases=3, label_dirichlet=1.0, batch_size=32, **kw,
    )  # fmt: skip
    u.lde.k, u.lde.epochs, u.li.epochs = 10, 40, 20
    u.ssr.ae_epochs, u.ssr.epochs, u.ssr.n_grid, u.lde.n_bars = 15, 60, 4, 2
    s = u.msr
    s.gen_hidden, s.disc_hidden, s.n_gen, s.n_eval_gen = [256, 256], [64], 20, 40
    s.epochs, s.sets_per_batch, s.n_grid, s.lr = 12, 16, 1, 1e-3
    return u


def make_fixture():
    bundle = _mnist()
    u = _settings()
    cfg = OmegaConf.create({
        "updates": u, "seed": 0, "net": {"name": "mlp"}, "target": {"name": "natural"},
        "trainer": {"accelerator": "cpu", "precision": 32, "deterministic": True, "devices": 1},
    })  # fmt: skip
    pools = make_pools(len(bundle), cfg.updates, 0)
    bases = BaseModels(_fit_linear(bundle), pools, 0)
    farms = {k: build_farm(cfg, bundle, pools, bases, k) for k in (1, 10)}
    return cfg, bundle, pools, farms, bases


def updates_context(farms_fixture, k: int = 10):
    """The UpdatesContext of a farms fixture with update sets of size `k`."""
    cfg, bundle, pools, farms, _ = farms_fixture
    u = OmegaConf.merge(cfg.updates, {"k": k})
    return UpdatesContext(u, bundle, pools, farms, seed=0)


def shuffled(farms_fixture):
    """The farms fixture with every farm's shadow deltas permuted (seeded): no signal."""
    cfg, bundle, pools, farms, bases = farms_fixture
    out = {}
    for k, farm in farms.items():
        sh = farm.shadow
        perm = torch.randperm(len(sh.deltas), generator=torch.Generator().manual_seed(0))
        out[k] = dataclasses.replace(farm, shadow=dataclasses.replace(sh, deltas=sh.deltas[perm]))
    cfg = OmegaConf.merge(cfg, {"updates": {"ssr": {"ae_epochs": 1}}})  # AE: oracle only
    return cfg, bundle, pools, out, bases


@pytest.fixture(scope="session")
def update_farms():
    return make_fixture()


@pytest.fixture(scope="session")
def shuffled_update_farms(update_farms):
    return shuffled(update_farms)
