"""PGD: threat-model properties, mode/grad hygiene, reference computations (FGSM, brute force)."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from lit_mia.errors import ConfigError
from lit_mia.perturb.pgd import AttackPGD, batched, pgd
from tests.helpers.runif import RunIf

N, C, H, W, K = 8, 1, 6, 6, 5  # batch, channels, height, width, classes


def conv_net(seed: int = 0) -> nn.Module:
    """Tiny net whose output depends on train/eval mode (BatchNorm, Dropout)."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(C, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(4 * H * W, K),
    )
    net[1].running_mean.uniform_(-0.2, 0.2)
    net[1].running_var.uniform_(0.5, 1.5)
    return net


def data(seed: int = 0, n: int = N) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, C, H, W, generator=g)
    x[0, 0, 0, :3] = torch.tensor([0.0, 1.0, 0.5])  # pixels on the box boundary
    return x, torch.randint(0, K, (n,), generator=g)


def linear_net(d: int, k: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(d, k).double()


def ce(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Per-example cross-entropy in eval mode, (N,)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = F.cross_entropy(model(x), y, reduction="none")
    model.train(was_training)
    return out


# --- threat model ----------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    eps=st.floats(0.0, 0.5),
    steps=st.integers(1, 10),
    random_start=st.booleans(),
    targeted=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_stays_in_eps_ball_and_image_box(eps, steps, random_start, targeted, seed):
    model = conv_net()
    x, y = data(seed)
    x_before = x.clone()
    gen = torch.Generator().manual_seed(seed)
    x_adv = pgd(
        model, x, y, eps, steps, 2.5 * eps / steps,
        random_start=random_start, targeted=targeted, generator=gen,
    )  # fmt: skip
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    assert x_adv.shape == x.shape
    assert x_adv.dtype == x.dtype
    assert x_adv.device == x.device
    assert not x_adv.requires_grad
    assert torch.equal(x, x_before)


def test_dtype_preserved_float64():
    model = conv_net().double()
    x, y = data()
    x_adv = pgd(model, x.double(), y, 0.1, 3, 0.05)
    assert x_adv.dtype == torch.float64


# --- untargeted ------------------------------------------------------------------------------


def test_untargeted_increases_loss_on_conv_net():
    model = conv_net()
    x, y = data()
    x_adv = pgd(model, x, y, 0.1, 10, 0.025)
    assert ce(model, x_adv, y).sum() > ce(model, x, y).sum()


def test_untargeted_loss_monotone_per_example_on_linear_model():
    # CE of a linear model is convex in x, so every clipped sign step cannot decrease it.
    model = linear_net(10, K)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(32, 10, generator=g, dtype=torch.float64), torch.randint(0, K, (32,))
    prev = ce(model, x, y)
    x_adv = x
    for steps in range(1, 6):
        x_adv = pgd(model, x, y, 0.2, steps, 0.06)
        loss = ce(model, x_adv, y)
        assert (loss >= prev - 1e-12).all()
        prev = loss


def test_one_step_equals_fgsm_reference():
    model = conv_net()
    model.train()  # pgd must switch to eval itself; the reference is computed in eval mode
    x, y = data()
    eps = 0.07
    x_adv = pgd(model, x, y, eps, steps=1, step_size=eps)

    model.eval()
    x_req = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_req), y), x_req)
    fgsm = (x + eps * grad.sign()).clamp(0, 1)
    torch.testing.assert_close(x_adv, fgsm, rtol=0, atol=1e-7)


# --- targeted --------------------------------------------------------------------------------


def test_targeted_decreases_loss_to_target_on_conv_net():
    model = conv_net()
    x, y = data()
    target = (y + 1) % K
    x_adv = pgd(model, x, target, 0.1, 10, 0.025, targeted=True)
    assert ce(model, x_adv, target).sum() < ce(model, x, target).sum()


def test_targeted_increases_target_margin_on_linear_model():
    model = linear_net(10, K, seed=3)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(32, 10, generator=g, dtype=torch.float64)
    target = torch.randint(0, K, (32,), generator=g)
    x_adv = pgd(model, x, target, 0.1, 10, 0.025, targeted=True)

    # Per example CE to the target is convex in x: it cannot go up.
    assert (ce(model, x_adv, target) <= ce(model, x, target) + 1e-12).all()

    def margin(z: Tensor) -> Tensor:  # z_t - max_{j != t} z_j, (N,)
        z_t = z.gather(1, target[:, None]).squeeze(1)
        others = z.scatter(1, target[:, None], float("-inf"))
        return z_t - others.max(1).values

    with torch.no_grad():
        before, after = margin(model(x)), margin(model(x_adv))
    assert after.mean() > before.mean()
    assert (after > before).float().mean() > 0.9


def test_targeted_two_class_margin_strictly_increases():
    # Two classes: CE to the target is a decreasing function of the margin, so it must grow.
    model = linear_net(6, 2, seed=4)
    g = torch.Generator().manual_seed(4)
    x = torch.rand(16, 6, generator=g, dtype=torch.float64)
    target = torch.randint(0, 2, (16,), generator=g)
    x_adv = pgd(model, x, target, 0.05, 5, 0.02, targeted=True)
    sign = 1 - 2 * target.double()  # margin z_t - z_other = sign * (z_0 - z_1)
    with torch.no_grad():
        m_before = sign * (model(x)[:, 0] - model(x)[:, 1])
        m_after = sign * (model(x_adv)[:, 0] - model(x_adv)[:, 1])
    assert (m_after > m_before).all()


# --- brute-force reference -------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3])
def test_matches_brute_force_max_over_eps_box(k):
    """f(x) = Wx + b on 2-D inputs: PGD's loss equals the max of CE over a dense grid of the box."""
    model = linear_net(2, k, seed=5)
    with torch.no_grad():
        model.weight.mul_(4)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(8, 2, generator=g, dtype=torch.float64)
    x[0] = torch.tensor([0.02, 0.97], dtype=torch.float64)  # box clipped by [0,1]
    y = torch.randint(0, k, (8,), generator=g)
    eps = 0.15
    x_adv = pgd(model, x, y, eps, steps=20, step_size=2.5 * eps / 20)
    pgd_loss = ce(model, x_adv, y)

    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    for i in range(len(x)):
        lo, hi = (x[i] - eps).clamp(0, 1), (x[i] + eps).clamp(0, 1)
        a, b = torch.meshgrid(
            lo[0] + t * (hi[0] - lo[0]), lo[1] + t * (hi[1] - lo[1]), indexing="ij"
        )
        grid = torch.stack([a.flatten(), b.flatten()], 1)  # (201*201, 2), corners included
        grid_max = ce(model, grid, y[i].expand(len(grid))).max()
        assert pgd_loss[i] == pytest.approx(grid_max.item(), abs=1e-6)


# --- mode and gradient hygiene ---------------------------------------------------------------


class ModeRecorder(nn.Module):
    """Records the training flag seen at each forward; optionally raises."""

    def __init__(self, raise_on_forward: bool = False) -> None:
        super().__init__()
        self.seen: list[bool] = []
        self.raise_on_forward = raise_on_forward

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(self.training)
        if self.raise_on_forward:
            raise RuntimeError("boom")
        return x


def net_with_recorder(raise_on_forward: bool = False) -> nn.Sequential:
    return nn.Sequential(conv_net(), ModeRecorder(raise_on_forward))


def modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.mark.parametrize("setup", ["train", "eval", "mixed"])
def test_runs_in_eval_mode_and_restores_each_submodule(setup):
    model = net_with_recorder()
    model.train(setup != "eval")
    if setup == "mixed":
        model[0][1].eval()  # BatchNorm frozen, Dropout still training
        model[1].eval()
    before = modes(model)
    x, y = data()
    pgd(model, x, y, 0.1, 3, 0.05)
    assert model[1].seen == [False, False, False]
    assert modes(model) == before


def test_restores_modes_when_forward_raises():
    model = net_with_recorder(raise_on_forward=True)
    model.train()
    model[0][3].eval()
    before = modes(model)
    x, y = data()
    with pytest.raises(RuntimeError, match="boom"):
        pgd(model, x, y, 0.1, 3, 0.05)
    assert modes(model) == before


def test_parameter_grads_untouched():
    model = conv_net()
    params = list(model.parameters())
    # Half the parameters carry an existing gradient, half have none.
    for i, p in enumerate(params):
        p.grad = torch.randn_like(p) if i % 2 else None
    grads_before = [None if p.grad is None else p.grad.clone() for p in params]
    requires_before = [p.requires_grad for p in params]
    x, y = data()
    pgd(model, x, y, 0.1, 5, 0.03, random_start=True)
    for p, g, r in zip(params, grads_before, requires_before):
        assert p.requires_grad == r
        if g is None:
            assert p.grad is None
        else:
            assert torch.equal(p.grad, g)


@pytest.mark.parametrize(
    "context", [torch.no_grad, functools.partial(torch.inference_mode, False)], ids=str
)
def test_works_inside_no_grad_contexts(context):
    model = conv_net()
    x, y = data()
    expected = pgd(model, x, y, 0.1, 5, 0.03)
    with context():
        got = pgd(model, x, y, 0.1, 5, 0.03)
    assert torch.equal(got, expected)
    assert not torch.equal(got, x)


def test_inference_mode_gives_clear_error():
    model = conv_net()
    x, y = data()
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode=False"):
        pgd(model, x, y, 0.1, 5, 0.03)


# --- degenerate settings and validation ------------------------------------------------------


class MustNotRun(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        raise AssertionError("forward pass should not happen")


@pytest.mark.parametrize(("eps", "steps"), [(0.0, 10), (0.1, 0)])
def test_zero_eps_or_steps_returns_copy_without_forward(eps, steps):
    x, y = data()
    x_adv = pgd(MustNotRun(), x, y, eps, steps, 0.01, random_start=True)
    assert torch.equal(x_adv, x)
    assert x_adv.data_ptr() != x.data_ptr()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"eps": -0.1, "steps": 5, "step_size": 0.01}, "eps"),
        ({"eps": 0.1, "steps": -1, "step_size": 0.01}, "steps"),
        ({"eps": 0.1, "steps": 5, "step_size": -0.01}, "step_size"),
    ],
)
def test_negative_settings_raise_config_error(kwargs, name):
    x, y = data()
    with pytest.raises(ConfigError, match=rf"^{name} must be >= 0"):
        pgd(conv_net(), x, y, **kwargs)


def test_random_start_deterministic_given_generator():
    model = conv_net()
    x, y = data()

    def run(seed: int, step_size: float = 0.02) -> Tensor:
        gen = torch.Generator().manual_seed(seed)
        return pgd(model, x, y, 0.1, 4, step_size, random_start=True, generator=gen)

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))
    start = run(0, step_size=0.0)  # step 0: the random start itself, inside the ball
    assert not torch.equal(start, x)
    assert (start - x).abs().max() <= 0.1 + 1e-6


def test_custom_loss_fn_trades_style_kl():
    """loss_fn(logits_adv, y) with y = clean probabilities: the KL to the clean prediction grows."""
    model = conv_net()
    x, _ = data()
    model.eval()
    with torch.no_grad():
        p_clean = model(x).softmax(1)

    def kl(logits_adv: Tensor, p: Tensor) -> Tensor:  # per-example, summed by pgd
        return F.kl_div(logits_adv.log_softmax(1), p, reduction="none").sum(1)

    x0 = (x + 0.001 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    x_adv = pgd(model, x0, p_clean, 0.1, 8, 0.02, loss_fn=kl)
    with torch.no_grad():
        assert kl(model(x_adv), p_clean).sum() > kl(model(x0), p_clean).sum()


def test_defaults_attack():
    assert AttackPGD().args() == {
        "eps": 0.1,
        "steps": 20,
        "step_size": pytest.approx(0.0125),
        "random_start": False,
    }
    assert AttackPGD(steps=5).args(eps=0.2)["step_size"] == pytest.approx(0.1)
    assert AttackPGD(step_size=0.01).args()["step_size"] == 0.01
    with pytest.raises(ConfigError, match="eps"):
        AttackPGD().args(eps=-1.0)


# --- batched ---------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 3, 8, 100])
def test_batched_equals_unbatched(batch_size):
    model = conv_net()
    x, y = data(n=10)
    kwargs = AttackPGD(eps=0.1).args()
    expected = pgd(model, x, y, **kwargs)
    got = batched(pgd, x, y, batch_size, model=model, **kwargs)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    got_partial = batched(functools.partial(pgd, model), x, y, batch_size, **kwargs)
    torch.testing.assert_close(got_partial, expected, rtol=0, atol=1e-6)


def test_batched_moves_chunks_and_returns_on_input_device():
    seen: list[tuple[int, torch.device]] = []

    def fn(x: Tensor, y: Tensor, scale: float) -> Tensor:
        seen.append((len(x), x.device))
        return x.flatten(1)[:, :2] * scale + y[:, None]  # different shape than x

    x, y = data(n=7)
    out = batched(fn, x, y, 3, device="cpu", scale=2.0)
    assert [n for n, _ in seen] == [3, 3, 1]
    assert out.shape == (7, 2)
    assert out.device == x.device
    torch.testing.assert_close(out, x.flatten(1)[:, :2] * 2.0 + y[:, None])


def test_batched_validates():
    x, y = data()
    with pytest.raises(ConfigError, match="batch_size"):
        batched(pgd, x, y, 0, model=conv_net(), eps=0.1, steps=1, step_size=0.1)
    with pytest.raises(ConfigError, match="same length"):
        batched(pgd, x, y[:-1], 4, model=conv_net(), eps=0.1, steps=1, step_size=0.1)


@RunIf(art=True)
def test_adversarial_accuracy_matches_art_pgd():
    """Cross-check against ART's ProjectedGradientDescent (L_inf, no random init, same eps,
    step and iterations, true labels) on a trained digits MLP: both are the sign-gradient
    ascent of the CE loss with projection onto the eps ball and [0, 1]; adversarial accuracy
    within 2 points (float64 vs float32 arithmetic inside ART can flip a handful of points
    that sit on the boundary)."""
    from art.attacks import evasion as art
    from art.estimators.classification import PyTorchClassifier

    from lit_mia.data.datasets import load_dataset
    from lit_mia.nets import build_net

    b = load_dataset("digits")
    torch.manual_seed(0)
    net = build_net("mlp", b.shape, 10, b.mean, b.std, width=0.5)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(net(b.x[:600]), b.y[:600]).backward()
        opt.step()
    net.eval()
    x, y = b.x[1000:1300], b.y[1000:1300]
    eps, steps = 0.1, 10
    step = 2.5 * eps / steps
    clf = PyTorchClassifier(
        net,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(b.shape),
        nb_classes=10,
        clip_values=(0.0, 1.0),
    )
    attack = art.ProjectedGradientDescent(
        clf,
        norm=float("inf"),
        eps=eps,
        eps_step=step,
        max_iter=steps,
        num_random_init=0,
        batch_size=300,
        verbose=False,
    )
    x_art = torch.as_tensor(attack.generate(x.numpy(), y=y.numpy()))
    x_ours = pgd(net, x, y, eps, steps, step)
    with torch.no_grad():
        acc_clean = (net(x).argmax(1) == y).float().mean().item()
        acc_art = (net(x_art.float()).argmax(1) == y).float().mean().item()
        acc_ours = (net(x_ours).argmax(1) == y).float().mean().item()
    assert acc_ours < acc_clean - 0.2  # the attack does something at this eps
    assert acc_ours == pytest.approx(acc_art, abs=0.02), (acc_clean, acc_art, acc_ours)
    assert (x_ours - x).abs().max() <= eps + 1e-6
