"""Interval bound propagation: sound on sampled and PGD points, exact at eps 0, ordered
accuracies, clear errors for layers it cannot bound, exact Normalize folding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_mia import bounds
from lit_mia.data.datasets import load_dataset
from lit_mia.errors import ConfigError
from lit_mia.nets import Normalize, PreActBlock, build_net
from lit_mia.perturb.pgd import pgd

TOL = 1e-4


def _bn(n: int, dim: int, seed: int) -> nn.Module:
    """Eval BatchNorm with random running stats and signed affine weights."""
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(n) if dim == 2 else nn.BatchNorm1d(n)
    bn.running_mean.copy_(torch.randn(n, generator=g))
    bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(n, generator=g))
        bn.bias.copy_(torch.randn(n, generator=g))
    return bn.eval()


def small_nets() -> dict[str, nn.Module]:
    """Tiny nets over [B, 2, 8, 8] covering every supported layer type; eval mode."""
    torch.manual_seed(0)
    norm = Normalize([0.4, 0.6], [0.3, 0.2])
    nets = {
        "mlp": nn.Sequential(
            norm, nn.Flatten(), nn.Linear(128, 32), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(32, 16), nn.LeakyReLU(0.1), nn.Linear(16, 5),
        ),
        "conv_pool": nn.Sequential(
            norm, nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, stride=1), nn.LeakyReLU(0.1), nn.AvgPool2d(2), nn.Flatten(),
            nn.Linear(6, 5),
        ),
        "batchnorm": nn.Sequential(
            norm, nn.Conv2d(2, 3, 3, stride=2, padding=1), _bn(3, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(48, 12), _bn(12, 1, 2), nn.ReLU(), nn.Linear(12, 5),
        ),
        "nested": nn.Sequential(
            norm, nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Identity()),
            nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(108, 10), nn.ReLU())),
            nn.Linear(10, 5),
        ),
    }  # fmt: skip
    return {k: v.eval() for k, v in nets.items()}


NETS = small_nets()


def inputs(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x in [0,1] with some pixels exactly 0 or 1 (the image box clips the ball there)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, 8, 8, generator=g)
    x[x < 0.1], x[x > 0.9] = 0.0, 1.0
    return x, torch.randint(0, 5, (n,), generator=g)


def true_margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return logits.gather(1, y[:, None]) - logits  # [B, K], z_y - z_j


@pytest.mark.parametrize("name", sorted(NETS))
def test_bounds_contain_sampled_and_pgd_outputs(name):
    net = NETS[name]
    x, y = inputs()
    eps = float(torch.empty(1).uniform_(0.01, 0.2, generator=torch.Generator().manual_seed(1)))
    lo, hi = bounds.interval_bounds(net, *bounds.input_box(x, eps))
    margins = bounds.margin_lower_bounds(net, x, y, eps)
    # 2,000 points per input, uniform in the ball ∩ [0,1] (the box is a product of intervals).
    g = torch.Generator().manual_seed(2)
    blo, bhi = bounds.input_box(x, eps)
    u = torch.rand(2000, *x.shape, generator=g)
    pts = blo + u * (bhi - blo)  # [S, B, C, H, W]
    # PGD points: untargeted and targeted to each class (push every margin down).
    adv = [pgd(net, x, y, eps, 10, eps / 4, random_start=True)]
    adv += [pgd(net, x, torch.full_like(y, j), eps, 10, eps / 4, targeted=True) for j in range(5)]
    pts = torch.cat([pts, torch.stack(adv)])
    assert ((pts - x).abs() <= eps + 1e-6).all()
    assert pts.min() >= 0
    assert pts.max() <= 1
    with torch.no_grad():
        z = net(pts.flatten(0, 1)).view(pts.shape[0], x.shape[0], -1)  # [S, B, K]
    assert (z >= lo - TOL).all()
    assert (z <= hi + TOL).all()
    m = z.gather(2, y[None, :, None].expand(z.shape[0], -1, 1)) - z
    assert (m >= margins - TOL).all()


@pytest.mark.parametrize("name", sorted(NETS))
def test_bounds_collapse_to_output_at_eps_zero(name):
    net = NETS[name]
    x, y = inputs()
    with torch.no_grad():
        z = net(x)
    for eps in (0.0, 1e-7):
        lo, hi = bounds.interval_bounds(net, *bounds.input_box(x, eps))
        torch.testing.assert_close(lo, z, atol=1e-4, rtol=0)
        torch.testing.assert_close(hi, z, atol=1e-4, rtol=0)
        m = bounds.margin_lower_bounds(net, x, y, eps)
        torch.testing.assert_close(m, true_margins(z, y), atol=1e-4, rtol=0)
    torch.testing.assert_close(bounds.worst_case_logits(net, x, y, 0.0), z, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(NETS))
def test_elided_margins_at_least_as_tight_as_naive(name):
    net = NETS[name]
    x, y = inputs()
    for eps in (0.02, 0.1, 0.3):
        wc = bounds.worst_case_logits(net, x, y, eps)  # z_y = lower_y, z_j = upper_j
        naive = wc.gather(1, y[:, None]) - wc
        naive = naive.masked_fill(F.one_hot(y, 5).bool(), 0.0)
        elided = bounds.margin_lower_bounds(net, x, y, eps)
        assert (elided >= naive - 1e-5).all()
        assert (elided.gather(1, y[:, None]) == 0).all()


def test_train_mode_dropout_uses_one_mask():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)
    )
    lo, hi = bounds.interval_bounds(net.train(), torch.zeros(4, 8), torch.ones(4, 8))
    assert (lo <= hi).all()


def test_verified_then_pgd_then_clean_accuracy():
    d = load_dataset("digits")
    x, y = d.x[:512], d.y[:512]
    torch.manual_seed(0)
    net = build_net("mlp", d.shape, d.n_classes, d.mean, d.std, width=0.25)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    eps = 0.02
    for step in range(150):  # IBP-ish training so some points verify
        i = torch.randint(0, 512, (64,))
        m = bounds.margin_lower_bounds(net, x[i], y[i], eps * min(1.0, step / 75))
        loss = F.cross_entropy(net(x[i]), y[i]) + F.cross_entropy(-m, y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    xt, yt = d.x[1000:1300], d.y[1000:1300]
    with torch.no_grad():
        clean = net(xt).argmax(1) == yt
    x_adv = pgd(net, xt, yt, eps, 20, 2.5 * eps / 20)
    with torch.no_grad():
        robust = net(x_adv).argmax(1) == yt
        ver = bounds.verified_mask(net, xt, yt, eps)
    assert ver.float().mean() > 0.1
    assert not (ver & ~robust).any()
    assert not (ver & ~clean).any()
    assert ver.float().mean() <= robust.float().mean() <= clean.float().mean()


def test_verified_mask_is_all_margins_positive():
    m = torch.tensor([[0.0, 0.5, 0.1], [0.2, 0.0, -0.1], [0.3, 0.0, 0.0]])
    y = torch.tensor([0, 1, 2])
    assert bounds.verified_from_margins(m, y).tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("layer", "why"),
    [
        (PreActBlock(3, 3, 1, 0.0, nn.ReLU), "PreActBlock"),
        (nn.Sigmoid(), "Sigmoid"),
        (nn.BatchNorm2d(3).train(), "BatchNorm2d"),
    ],
)
def test_unsupported_layer_names_layer_and_net(layer, why):
    net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), layer, nn.Flatten(), nn.Linear(48, 2))
    with pytest.raises(ConfigError, match=rf"{why}.*position 1.*net my_net"):
        bounds.check_supported(net, "my_net")
    with pytest.raises(ConfigError, match=why):
        bounds.interval_bounds(net, torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4))


def test_wide_resnet_rejected_with_its_name():
    net = build_net("wide_resnet", (3, 8, 8), 10, [0.5] * 3, [0.2] * 3, width=0.25, depth=1)
    with pytest.raises(ConfigError, match=r"PreActBlock \(position group1\.0\) of net wide_res"):
        bounds.check_supported(net.eval(), "wide_resnet")


FOLD_NETS = {
    "mlp (into Linear)": nn.Sequential(
        Normalize([0.4, 0.6], [0.3, 0.2]), nn.Flatten(), nn.Linear(128, 8), nn.ReLU(),
        nn.Dropout(0.3), nn.Linear(8, 3),
    ),
    "conv unpadded (into Conv2d)": nn.Sequential(
        Normalize([0.4, 0.6], [0.3, 0.2]), nn.Conv2d(2, 4, 3, stride=2), nn.ReLU(),
        nn.Flatten(), nn.Linear(36, 3),
    ),
    "conv padded (1x1 conv)": nn.Sequential(
        Normalize([0.4, 0.6], [0.3, 0.2]), nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(),
        _bn(4, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(256, 6), _bn(6, 1, 4), nn.Linear(6, 3),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FOLD_NETS))
def test_fold_normalize_is_exact_and_shares_gradients(name):
    torch.manual_seed(0)
    net = FOLD_NETS[name].eval()
    x, _ = inputs(8)
    folded = bounds.fold_normalize(net)
    kinds = {type(m) for m in folded}
    assert kinds <= {nn.Linear, nn.Conv2d, nn.ReLU, nn.Flatten}
    torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-5)
    params = [p for p in net.parameters() if p.requires_grad]
    g_net = torch.autograd.grad(net(x).square().sum(), params)
    g_fold = torch.autograd.grad(folded(x).square().sum(), params)
    for a, b in zip(g_net, g_fold):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    if "1x1" not in name:
        assert len(folded) == len([m for m in net if not isinstance(m, nn.Dropout)]) - 1


def test_fold_normalize_rejects_what_the_dual_bound_cannot_take():
    net = build_net("lenet_mnist", (1, 16, 16), 10, [0.5], [0.2])
    with pytest.raises(ConfigError, match=r"MaxPool2d \(position 3\) of net lenet"):
        bounds.fold_normalize(net, net_name="lenet_mnist")
    drop = build_net("mlp", (1, 8, 8), 10, [0.5], [0.2], dropout=0.5)
    with pytest.raises(ConfigError, match="Dropout in train mode"):
        bounds.fold_normalize(drop.train())
    bounds.fold_normalize(drop.eval())
