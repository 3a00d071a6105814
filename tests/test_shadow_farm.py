"""The shadow farm (lit_mia/models/shadow_farm.py): the vmap and loop paths train the same
models for the same seeds (natural and PGD, Adam and SGD, MLP and a tiny LeNet), and the
stacked primitives agree with plain per-model calls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_mia.data.datasets import load_dataset
from lit_mia.errors import ConfigError
from lit_mia.models.shadow_farm import (
    FARMS,
    TrainSpec,
    choose_farm,
    ensemble_logits,
    ensemble_predict,
    functional_net,
    stack_state,
    stack_state_dicts,
    train_farm,
    unstack_state,
    vmap_pgd,
    vmappable,
)
from lit_mia.nets import build_net
from lit_mia.perturb.pgd import pgd


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def mnist_small():
    b = load_dataset("mnist5k")
    return b.x[:300].clone(), b.y[:300].clone(), b


def maker(bundle, name: str, width: float, dropout: float = 0.0):
    return lambda: build_net(
        name, bundle.shape, bundle.n_classes, bundle.mean, bundle.std, width=width,
        dropout=dropout,
    )  # fmt: skip


def train_sets(n_total: int, m: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.sort(rng.choice(n_total, size, replace=False)) for _ in range(m)]


PGD = dict(regime="pgd", eps=0.1, steps=3, step_size=0.04, random_start=True)
SPECS = {
    "natural-adam": TrainSpec(batch_size=16, epochs=2),
    "natural-sgd": TrainSpec(
        optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, batch_size=16, epochs=2
    ),
    "pgd-adam": TrainSpec(batch_size=16, epochs=1, weight_decay=1e-4, **PGD),
}


def assert_same_farm(a, b, x, atol=1e-5) -> None:
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        torch.testing.assert_close(a.params[k], b.params[k], atol=atol, rtol=1e-4, msg=k)
    torch.testing.assert_close(a.logits(x), b.logits(x), atol=10 * atol, rtol=1e-4)


@pytest.mark.parametrize("spec_name", list(SPECS))
def test_vmap_equals_loop_mlp(digits, spec_name) -> None:
    spec = SPECS[spec_name]
    mk = maker(digits, "mlp", 0.25)
    sets = train_sets(len(digits), 3, 40)
    loop = train_farm(mk, digits.x, digits.y, sets, [11, 12, 13], spec, farm="loop")
    vm = train_farm(mk, digits.x, digits.y, sets, [11, 12, 13], spec, farm="vmap")
    assert (loop.path, vm.path) == ("loop", "vmap")
    assert_same_farm(loop, vm, digits.x[:64])
    # the models differ from each other and from their initialisation
    assert not torch.allclose(vm.params["2.weight"][0], vm.params["2.weight"][1])
    torch.manual_seed(11)
    init = mk()
    assert not torch.allclose(init.state_dict()["2.weight"], vm.state_dict(0)["2.weight"])


@pytest.mark.parametrize("spec_name", ["natural-adam", "pgd-adam"])
def test_vmap_equals_loop_lenet(mnist_small, spec_name) -> None:
    x, y, b = mnist_small
    mk = maker(b, "lenet_mnist", 0.25)
    sets = train_sets(len(x), 2, 32)
    spec = SPECS[spec_name]
    loop = train_farm(mk, x, y, sets, [5, 6], spec, farm="loop")
    vm = train_farm(mk, x, y, sets, [5, 6], spec, farm="vmap")
    assert_same_farm(loop, vm, x[:32], atol=1e-4)


def test_loop_model_equals_a_single_plain_training(digits) -> None:
    """Model i of a farm is the net a one-model farm with the same seed gives (no cross-talk)."""
    mk = maker(digits, "mlp", 0.25)
    sets = train_sets(len(digits), 3, 40)
    spec = SPECS["natural-adam"]
    three = train_farm(mk, digits.x, digits.y, sets, [1, 2, 3], spec, farm="vmap")
    one = train_farm(mk, digits.x, digits.y, sets[1:2], [2], spec, farm="loop")
    for k, v in one.state_dict(0).items():
        torch.testing.assert_close(three.state_dict(1)[k], v, atol=1e-5, rtol=1e-4)


def test_stack_unstack_and_ensemble_logits(digits) -> None:
    mk = maker(digits, "mlp", 0.25)
    nets = []
    for s in range(3):
        torch.manual_seed(s)
        nets.append(mk().eval())
    params, buffers = stack_state(nets)
    assert all(v.requires_grad and v.is_leaf and v.shape[0] == 3 for v in params.values())
    x = digits.x[:10]
    shared = ensemble_logits(functional_net(nets[0]), params, buffers, x)  # [M,B,K]
    per = ensemble_logits(functional_net(nets[0]), params, buffers, torch.stack([x, x + 0.1, x]))
    for i, net in enumerate(nets):
        with torch.no_grad():
            torch.testing.assert_close(shared[i], net(x))
            torch.testing.assert_close(per[i], net([x, x + 0.1, x][i]))
        sd = unstack_state(params, buffers, i)
        for k, v in net.state_dict().items():
            assert torch.equal(sd[k], v)
    p2, b2 = stack_state_dicts(nets[0], [n.state_dict() for n in nets])
    pred = ensemble_predict(nets[0], p2, b2, digits.x[:25], batch_size=7)
    torch.testing.assert_close(pred[:, :10], shared.detach())


def test_vmap_pgd_equals_pgd(digits) -> None:
    mk = maker(digits, "mlp", 0.25)
    nets = []
    for s in range(2):
        torch.manual_seed(s)
        nets.append(mk().eval())
    params, buffers = stack_state(nets)
    x = torch.stack([digits.x[:8], digits.x[8:16]])
    y = torch.stack([digits.y[:8], digits.y[8:16]])
    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    noise = torch.stack([torch.rand(x.shape[1:], generator=g) for g in gens])
    adv = vmap_pgd(functional_net(nets[0]), params, buffers, x, y, 0.1, 4, 0.03, noise)
    for i, net in enumerate(nets):
        g = torch.Generator().manual_seed((3, 4)[i])
        ref = pgd(net, x[i], y[i], 0.1, 4, 0.03, random_start=True, generator=g)
        torch.testing.assert_close(adv[i], ref)
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1


def test_auto_chooses_a_path_and_loop_for_dropout(digits) -> None:
    sets = train_sets(len(digits), 2, 32)
    spec = TrainSpec(batch_size=16, epochs=1)
    assert choose_farm(maker(digits, "mlp", 0.25), digits.x, digits.y, sets, spec) in FARMS
    drop = maker(digits, "mlp", 0.25, dropout=0.5)
    assert not vmappable(drop())
    assert choose_farm(drop, digits.x, digits.y, sets, spec) == "loop"
    uneven = [sets[0], sets[1][:20]]
    assert choose_farm(maker(digits, "mlp", 0.25), digits.x, digits.y, uneven, spec) == "loop"
    farm = train_farm(drop, digits.x, digits.y, sets, [0, 1], spec, farm="auto")
    assert farm.path == "loop" and len(farm) == 2
    with pytest.raises(ConfigError, match="attack.lira.farm=vmap"):
        train_farm(drop, digits.x, digits.y, sets, [0, 1], spec, farm="vmap")
    with pytest.raises(ConfigError, match="valid: auto, loop, vmap"):
        train_farm(drop, digits.x, digits.y, sets, [0, 1], spec, farm="fast")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_farm_on_gpu_matches_cpu(digits) -> None:
    mk = maker(digits, "mlp", 0.25)
    sets = train_sets(len(digits), 3, 40)
    spec = SPECS["natural-adam"]
    cpu = train_farm(mk, digits.x, digits.y, sets, [1, 2, 3], spec, farm="loop")
    gpu = train_farm(mk, digits.x.cuda(), digits.y.cuda(), sets, [1, 2, 3], spec, farm="vmap")
    assert gpu.params["2.weight"].is_cuda
    for k in cpu.params:
        torch.testing.assert_close(gpu.params[k].cpu(), cpu.params[k], atol=1e-4, rtol=1e-3)
