"""Properties of lit_mia.nets: shapes, Normalize first, width knob, flat layout, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_mia.errors import ConfigError
from lit_mia.nets import NETS, Normalize, PreActBlock, build_net

BUILTIN = sorted(n for n in NETS if not NETS.is_plugin(n))  # plug-ins: tests/test_plugins.py

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)
DIGITS = (1, 8, 8)

# Small widths keep the big nets (fmnist_cnn: 256/512 channels, wide_resnet) fast on CPU.
SMALL = {
    "lenet_mnist": 0.25,
    "lenet_cifar": 0.25,
    "fmnist_cnn": 1 / 16,
    "yale_cnn": 0.25,
    "wide_resnet": 0.25,
    "mlp": 0.25,
}
SMALL_DEPTH = {"wide_resnet": 1, "mlp": None}
FLAT_LAYERS = (
    Normalize, nn.Conv2d, nn.ReLU, nn.LeakyReLU, nn.MaxPool2d, nn.Flatten, nn.Linear, nn.Dropout
)  # fmt: skip


def stats(c: int) -> tuple[list[float], list[float]]:
    return [0.5] * c, [0.25] * c


def small(name: str, in_shape=MNIST, n_classes: int = 10, **kw) -> nn.Module:
    kw.setdefault("width", SMALL[name])
    kw.setdefault("depth", SMALL_DEPTH.get(name))
    return build_net(name, in_shape, n_classes, *stats(in_shape[0]), **kw)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_registry_lists_the_paper_nets():
    assert set(BUILTIN) == set(SMALL)


@pytest.mark.parametrize("in_shape", [MNIST, CIFAR], ids=["mnist", "cifar"])
@pytest.mark.parametrize("name", BUILTIN)
def test_logits_shape_and_normalize_first(name, in_shape):
    torch.manual_seed(0)
    net = small(name, in_shape, n_classes=7).eval()
    assert isinstance(net[0], Normalize)
    assert next(iter(net.modules())) is net
    assert isinstance(next(iter(net.children())), Normalize)
    out = net(torch.rand(3, *in_shape))
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out.sum(1), torch.ones(3))  # raw logits, no softmax


@pytest.mark.parametrize("name", BUILTIN)
def test_gradients_reach_the_input(name):
    torch.manual_seed(0)
    net = small(name, CIFAR).eval()
    x = torch.rand(2, *CIFAR, requires_grad=True)
    loss = nn.functional.cross_entropy(net(x), torch.tensor([1, 2]))
    (g,) = torch.autograd.grad(loss, x)
    assert g.shape == x.shape
    assert torch.isfinite(g).all()
    assert g.abs().sum() > 0


@pytest.mark.parametrize("name", BUILTIN)
def test_parameter_count_grows_with_width(name):
    base = 1 / 16 if name == "fmnist_cnn" else 1.0  # 256/512 channels at width 1
    depth = SMALL_DEPTH.get(name)
    counts = [n_params(small(name, CIFAR, width=base * f, depth=depth)) for f in (0.5, 1, 2)]
    assert counts[0] < counts[1] < counts[2]


@pytest.mark.parametrize("name", sorted(set(BUILTIN) - {"wide_resnet"}))
def test_flat_sequential_of_standard_layers(name):
    net = small(name, CIFAR, dropout=0.3, activation="leaky_relu")
    assert type(net) is nn.Sequential
    for layer in net:
        assert isinstance(layer, FLAT_LAYERS), type(layer)
        assert not list(layer.children())
    torch.fx.symbolic_trace(net)


def test_wide_resnet_groups_are_residual_and_traceable():
    net = small("wide_resnet", CIFAR, depth=2)
    assert isinstance(net.norm, Normalize)
    assert net[0] is net.norm
    assert [len(g) for g in (net.group1, net.group2, net.group3)] == [2, 2, 2]
    assert all(isinstance(u, PreActBlock) for g in (net.group1, net.group2, net.group3) for u in g)
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    torch.fx.symbolic_trace(net)


def test_wide_resnet_madry_channels():
    net = build_net("wide_resnet", CIFAR, 10, *stats(3), width=10, depth=5)  # no forward run
    assert net.stem.out_channels == 16
    groups = (net.group1, net.group2, net.group3)
    assert [len(g) for g in groups] == [5, 5, 5]
    assert [g[-1].conv2.out_channels for g in groups] == [160, 320, 640]
    assert [g[0].conv1.stride for g in groups] == [(1, 1), (2, 2), (2, 2)]
    assert (net.fc.in_features, net.fc.out_features) == (640, 10)
    assert build_net("wide_resnet", CIFAR, 10, *stats(3)).group1[-1].conv2.out_channels == 16


def test_fmnist_cnn_width_one_sixteenth_channels():
    net = build_net("fmnist_cnn", MNIST, 10, *stats(1), width=1 / 16)
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 16, 32, 32, 32]
    assert [c.stride[0] for c in convs] == [1, 1, 2, 1, 1, 2]
    fcs = [m for m in net if isinstance(m, nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(32 * 7 * 7, 12), (12, 10)]


def test_lenets_match_updates_leak_appendix():
    mnist = build_net("lenet_mnist", MNIST, 10, *stats(1))
    # conv 1*10*25+10, conv 10*20*25+20, fc 320*50+50, fc 50*10+10 (Updates-Leak appendix A)
    assert n_params(mnist) == 260 + 5020 + 16050 + 510
    cifar = build_net("lenet_cifar", CIFAR, 10, *stats(3))
    fcs = [(m.in_features, m.out_features) for m in cifar if isinstance(m, nn.Linear)]
    assert fcs == [(400, 120), (120, 84), (84, 10)]


def test_yale_cnn_on_yale_faces():
    net = build_net("yale_cnn", (1, 168, 192), 38, *stats(1), width=0.25)
    assert [m.out_channels for m in net if isinstance(m, nn.Conv2d)] == [2, 2, 4, 4, 8, 8, 16, 16]
    assert net[-3].in_features == 16 * 11 * 12
    assert net.eval()(torch.rand(2, 1, 168, 192)).shape == (2, 38)


@pytest.mark.parametrize("name", ["mlp", "fmnist_cnn", "yale_cnn", "wide_resnet"])
def test_digits_sized_inputs_work(name):
    assert small(name, DIGITS).eval()(torch.rand(2, *DIGITS)).shape == (2, 10)


@pytest.mark.parametrize("name", ["lenet_mnist", "lenet_cifar"])
def test_lenet_rejects_digits_sized_inputs(name):
    with pytest.raises(ConfigError, match=rf"net {name} needs inputs of at least 16x16.*got 8x8"):
        small(name, DIGITS)
    small(name, (1, 16, 16))  # the smallest valid size


def test_normalize_is_exact():
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.3, 0.7]
    x = torch.rand(4, 3, 5, 6)
    out = Normalize(mean, std)(x)
    for c in range(3):
        ref = (x[:, c] - torch.tensor(mean[c])) / torch.tensor(std[c])
        assert torch.equal(out[:, c], ref)
    assert Normalize(mean, std).mean.shape == (1, 3, 1, 1)


@pytest.mark.parametrize("std", [[0.0], [-1.0], [float("nan")]])
def test_normalize_rejects_bad_std(std):
    with pytest.raises(ConfigError, match="std must be > 0"):
        Normalize([0.5], std)


def test_dropout_before_each_hidden_fc_and_activation_choice():
    net = small("lenet_cifar", CIFAR, dropout=0.5, activation="leaky_relu")
    layers = list(net)
    drops = [i for i, m in enumerate(layers) if isinstance(m, nn.Dropout)]
    assert len(drops) == 2
    assert all(isinstance(layers[i + 1], nn.Linear) for i in drops)
    assert any(isinstance(m, nn.LeakyReLU) for m in layers)
    assert not any(type(m) is nn.ReLU for m in layers)
    assert not any(isinstance(m, nn.Dropout) for m in small("lenet_cifar", CIFAR))


def test_mlp_depth_sets_hidden_layers():
    net = small("mlp", MNIST, depth=3)
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [64, 64, 64, 10]


@pytest.mark.parametrize(
    ("name", "kw", "key"),
    [
        ("mlp", {"width": 0}, "net.width must be > 0, got 0"),
        ("mlp", {"width": -1}, "net.width must be > 0, got -1"),
        ("mlp", {"dropout": 1.0}, "net.dropout"),
        ("mlp", {"dropout": -0.1}, "net.dropout"),
        ("mlp", {"activation": "tanh"}, "net.activation 'tanh'; valid: leaky_relu, relu"),
        ("wide_resnet", {"depth": 0}, "net.depth must be an int > 0"),
        ("lenet_mnist", {"depth": 3}, "net.depth is not used by net lenet_mnist"),
        ("mlp", {"n_classes": 0}, "n_classes"),
        ("mlp", {"mean": [0.5, 0.5]}, "one value per input channel"),
        ("mlp", {"in_shape": (28, 28)}, "in_shape"),
    ],
)
def test_bad_config_raises_config_error_naming_the_key(name, kw, key):
    args = {"in_shape": MNIST, "n_classes": 10, "mean": [0.5], "std": [0.25]}
    args.update(kw)
    with pytest.raises(ConfigError) as err:
        build_net(name, **args)
    assert key in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_net_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown net 'resnet50'") as err:
        build_net("resnet50", MNIST, 10, *stats(1))
    assert all(n in str(err.value) for n in NETS)
