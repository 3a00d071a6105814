"""The Updates-Leak farm: fast path vs the deepcopy + torch.optim reference, zero deltas at
lr = 0, probe modes, index pools, and the on-disk cache (hit, miss on any changed field)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lit_mia import config
from lit_mia.data.datasets import load_dataset
from lit_mia.errors import ConfigError
from lit_mia.models.cache import ModelCache
from lit_mia.models.update_deltas import UpdateRule, naive_deltas, update_deltas
from lit_mia.models.update_farm import BaseModels, build_farm
from lit_mia.models.update_pools import check_disjoint, make_pools, sample_update_sets
from lit_mia.nets import build_net


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _net(bundle, name="mlp", seed=0, **kw):
    torch.manual_seed(seed)
    return build_net(name, bundle.shape, bundle.n_classes, bundle.mean, bundle.std, **kw).eval()


def _sets(bundle, m, k, seed=0):
    idx = torch.as_tensor(np.random.default_rng(seed).integers(0, len(bundle), (m, k)))
    return bundle.x[idx], bundle.y[idx]


@pytest.mark.parametrize(
    ("k", "rule"),
    [
        (1, UpdateRule("sgd", 0.05, 0.9, 64)),  # single sample: per-sample gradients
        (7, UpdateRule("sgd", 0.05, 0.9, 3)),  # 3 steps: vmapped params and momentum
        (5, UpdateRule("adam", 0.01, 0.0, 2)),
        (4, UpdateRule("sgd", 0.05, 0.0, 4)),
    ],
)
@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_fast_path_matches_deepcopy_reference(digits, k, rule, mode):
    net = _net(digits, width=0.25)
    probe = digits.x[:12]
    xs, ys = _sets(digits, 9, k, seed=k)
    ref = naive_deltas(net, probe, xs, ys, rule)
    fast = update_deltas(net, probe, xs, ys, rule, chunk=4, probe_mode=mode)
    assert fast.shape == (9, 12 * 10)
    assert ref.abs().max() > 1e-4  # the updates do move the posteriors
    torch.testing.assert_close(fast, ref, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("log", [False, True])
def test_float64_fast_path_matches_float64_reference(digits, log):
    net = _net(digits, width=0.25)
    xs, ys = _sets(digits, 6, 5, seed=3)
    rule = UpdateRule("sgd", 1e-3, 0.9, 2)
    ref = naive_deltas(net, digits.x[:9], xs, ys, rule, torch.float64, log)
    fast = update_deltas(net, digits.x[:9], xs, ys, rule, 4, "loop", torch.float64, log)
    assert fast.dtype == torch.float64
    torch.testing.assert_close(fast, ref, atol=1e-12, rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "kw", "k", "rule"),
    [
        ("lenet_mnist", {"width": 0.5}, 1, UpdateRule("sgd", 1e-3, 0.9, 64)),
        ("lenet_mnist", {"width": 0.5}, 5, UpdateRule("sgd", 1e-3, 0.9, 2)),  # 3 steps
        ("mlp", {"width": 0.25, "activation": "leaky_relu"}, 3, UpdateRule("adam", 1e-3, 0, 2)),
    ],
)
@pytest.mark.parametrize("log", [False, True])
def test_delta_probe_mode_matches_the_float64_reference(name, kw, k, rule, log):
    """probe_mode "delta" (float32 differences carried layer by layer) agrees with the
    float64 forward to 1e-5 of each updated model's largest change, on a confident base
    (p_y ~ 1 on most unseen samples: tiny updates) and on multi-step updates."""
    bundle = load_dataset("mnist5k")
    net = _net(bundle, name, **kw)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(40):  # confident: most update samples get p_y near 1
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(bundle.x[:300]), bundle.y[:300]).backward()
        opt.step()
    net.eval()
    idx = torch.as_tensor(np.random.default_rng(k).integers(1000, 2000, (6, k)))  # unseen
    xs, ys, probe = bundle.x[idx], bundle.y[idx], bundle.x[4000:4012]
    # the float64 fast path (same float32 gradients; itself checked against naive_deltas)
    ref = update_deltas(net, probe, xs, ys, rule, 4, "loop", torch.float64, log)
    assert (ref.norm(dim=1) > 0).all()
    fast = update_deltas(net, probe, xs, ys, rule, 4, "delta", torch.float64, log)
    assert fast.dtype == torch.float64 and fast.shape == ref.shape
    # float32 differences: errors ~1e-7 of the largest change of each updated model
    err = (fast - ref).abs().amax(1)
    assert (err <= 1e-5 * ref.abs().amax(1) + 1e-12).all(), err / ref.abs().amax(1)


@pytest.mark.parametrize(
    ("name", "shape"),
    [("lenet_cifar", (3, 32, 32)), ("fmnist_cnn", (1, 28, 28)), ("yale_cnn", (1, 32, 32))],
)
def test_delta_probe_mode_on_the_other_farm_nets(name, shape):
    """Padded convolutions, 3 channels, several conv layers: delta agrees with the float64
    forward to 1e-5 of each model's largest change (measured ~1e-7)."""
    torch.manual_seed(0)
    net = build_net(name, shape, 10, (0.1,) * shape[0], (0.3,) * shape[0], width=0.5).eval()
    probe, xs = torch.rand(6, *shape), torch.rand(3, 2, *shape)
    ys = torch.randint(0, 10, (3, 2))
    rule = UpdateRule("sgd", 1e-2, 0.9, 2)
    ref = update_deltas(net, probe, xs, ys, rule, 4, "loop", torch.float64, True)
    fast = update_deltas(net, probe, xs, ys, rule, 4, "delta", torch.float64, True)
    assert ((fast - ref).abs().amax(1) <= 1e-5 * ref.abs().amax(1)).all()


def test_delta_probe_mode_refuses_nets_without_rules(digits):
    from lit_mia.models.delta_forward import check_delta_net

    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10))
    with pytest.raises(ConfigError, match="Tanh is not one of them: use probe_mode=loop"):
        check_delta_net(net)
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(3), nn.Flatten())
    with pytest.raises(ConfigError, match="2x2 max-pools"):
        check_delta_net(pooled)


def test_float64_keeps_updates_float32_rounds_away(digits):
    """A confidently classified update sample moves the parameters by less than float32's
    resolution: float32 deltas are (mostly) exact zeros, float64 ones are not (issue 11)."""
    net = _net(digits, width=0.25)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = digits.x[:200], digits.y[:200]
    for _ in range(300):  # fit these samples until p_y ~ 1
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    xs, ys = x[:20, None], y[:20, None]
    rule = UpdateRule("sgd", 1e-6, 0.0, 64)
    d32 = update_deltas(net, digits.x[300:340], xs, ys, rule, 8, "loop", torch.float32, True)
    d64 = update_deltas(net, digits.x[300:340], xs, ys, rule, 8, "loop", torch.float64, True)
    assert (d64.norm(dim=1) > 0).all()
    assert (d32.norm(dim=1) == 0).float().mean() > 0.5


def test_fast_path_matches_reference_on_lenet():
    bundle = load_dataset("mnist5k")
    net = _net(bundle, "lenet_mnist", width=0.5)
    probe = bundle.x[:10]
    for k in (1, 3):
        xs, ys = _sets(bundle, 5, k, seed=k)
        rule = UpdateRule("sgd", 0.01, 0.9, 2)
        torch.testing.assert_close(
            update_deltas(net, probe, xs, ys, rule, chunk=2),
            naive_deltas(net, probe, xs, ys, rule),
            atol=1e-6,
            rtol=1e-4,
        )


def test_zero_lr_gives_zero_deltas(digits):
    net = _net(digits)
    xs, ys = _sets(digits, 6, 3)
    for mode in ("loop", "vmap"):
        d = update_deltas(net, digits.x[:8], xs, ys, UpdateRule("sgd", 0.0, 0.9, 2), 4, mode)
        assert d.abs().max() < 1e-7


def test_net_state_is_restored(digits):
    net = _net(digits).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    xs, ys = _sets(digits, 3, 2)
    update_deltas(net, digits.x[:4], xs, ys, UpdateRule(lr=0.1), 2)
    assert net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_batchnorm_nets_are_refused(digits):
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 10))
    xs, ys = _sets(digits, 2, 1)
    with pytest.raises(ConfigError, match="BatchNorm"):
        update_deltas(net, digits.x[:4], xs, ys, UpdateRule())


# ---------------------------------------------------------------- pools
class _U:
    base_size, shadow_pool, target_pool, n_probe = 100, 200, 150, 40


def test_pools_are_disjoint_and_seeded():
    a, b = make_pools(1000, _U, 3), make_pools(1000, _U, 3)
    assert a.to_dict() == b.to_dict()
    sizes = {k: len(v) for k, v in a.to_dict().items()}
    assert sizes == {
        "shadow_base": 100,
        "shadow_pool": 200,
        "target_base": 100,
        "target_pool": 150,
        "probe": 40,
    }
    allidx = np.concatenate([np.asarray(v) for v in a.to_dict().values()])
    assert np.unique(allidx).size == allidx.size
    assert make_pools(1000, _U, 4).to_dict() != a.to_dict()


def test_pools_that_cannot_fit_and_overlaps_raise():
    with pytest.raises(ConfigError, match="probe set would overlap"):
        make_pools(500, _U, 0)
    with pytest.raises(ConfigError, match="probe and target_pool index sets overlap"):
        check_disjoint({"probe": np.array([1, 2]), "target_pool": np.array([2, 3])})


def test_update_sets():
    pool = np.arange(100, 160)
    labels = pool % 3
    rng = np.random.default_rng(0)
    sets = sample_update_sets(pool, labels, 50, 6, rng, 0.0)
    assert sets.shape == (50, 6)
    assert all(np.unique(s).size == 6 for s in sets) and np.isin(sets, pool).all()
    skew = sample_update_sets(pool, labels, 200, 6, np.random.default_rng(1), 0.1)
    assert all(np.unique(s).size == 6 for s in skew) and np.isin(skew, pool).all()
    # a small Dirichlet concentration gives more one-label sets than plain draws
    pure = [np.unique(s % 3).size == 1 for s in skew]
    plain = [np.unique(s % 3).size == 1 for s in sample_update_sets(pool, labels, 200, 6, rng, 0)]
    assert np.mean(pure) > np.mean(plain) + 0.2
    with pytest.raises(ConfigError, match="updates.k"):
        sample_update_sets(pool, labels, 2, 61, rng, 0.0)


# ---------------------------------------------------------------- cache
TINY = [
    "data.name=digits",
    "net.name=mlp",
    "net.width=0.25",
    "updates.k=2",
    "updates.lde.k=2",
    "updates.n_shadow_bases=2",
    "updates.m_shadow=8",
    "updates.m_target=4",
    "updates.base_size=40",
    "updates.shadow_pool=50",
    "updates.target_pool=50",
    "updates.n_probe=6",
    "updates.batch_size=4",
    "updates.msr.sets_per_batch=4",
    "updates.msr.n_eval_gen=4",
]


def test_cache_hit_and_miss_on_changed_fields(tmp_path, digits):
    calls = []

    def fit_base(idx, seed):
        calls.append(seed)
        return _net(digits, seed=seed, width=0.25)

    def farm(*extra):
        cfg = config.load("updates_leak_multi", [*TINY, *extra])
        pools = make_pools(len(digits), cfg.updates, cfg.seed)
        cache = ModelCache(tmp_path, "updates_leak", key_name="updates.cache_dir")
        bases = BaseModels(fit_base, pools, int(cfg.seed))
        return build_farm(cfg, digits, pools, bases, int(cfg.updates.k), cache)

    first = farm()
    assert not first.cache_hit and len(calls) == 3  # two shadow bases, one target base
    assert first.shadow.base_of.tolist() == [0, 1] * 4
    assert first.shadow.deltas.shape == (8, 60) and first.target.sets.shape == (4, 2)
    assert first.shadow.deltas.dtype == torch.float64 and first.shadow.base_logp.shape == (2, 6, 10)
    again = farm()
    assert again.cache_hit and len(calls) == 3
    torch.testing.assert_close(again.shadow.deltas, first.shadow.deltas)
    assert torch.equal(again.target.labels, first.target.labels)
    changes = ("updates.update_lr=0.01", "seed=1", "updates.k=3", "net.width=0.5",
               "updates.n_shadow_bases=1", "updates.farm_dtype=float32")  # fmt: skip
    for change in changes:
        n = len(calls)
        assert not farm(change).cache_hit, change
        assert len(calls) == n + 1 + (2 if "bases" not in change else 1)
    assert farm("updates.li.epochs=3").cache_hit  # attack settings do not change the farm


def test_probe_twin_gives_the_same_logits():
    from lit_mia.models.update_deltas import MaxPool2x2, probe_twin

    torch.manual_seed(0)
    for name, shape in (("lenet_mnist", (1, 28, 28)), ("lenet_cifar", (3, 32, 32))):
        net = build_net(name, shape, 10, (0.1,) * shape[0], (0.3,) * shape[0]).eval()
        twin = probe_twin(net)
        assert any(isinstance(m, MaxPool2x2) for m in twin.modules())
        assert dict(twin.named_parameters()).keys() == dict(net.named_parameters()).keys()
        x = torch.rand(6, *shape)
        with torch.no_grad():
            assert torch.equal(twin(x), net(x))
    odd = torch.rand(2, 3, 7, 9)
    assert torch.equal(MaxPool2x2()(odd), torch.nn.functional.max_pool2d(odd, 2))
