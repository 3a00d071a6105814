"""The updated-model farm of Updates-Leak (Salem et al. USENIX Security'20, §3.1, §3.4).

From a base model M, each updated model M'_i is a fresh copy of M trained one epoch on its own
update set D_i (k samples, batches of `update_batch_size`, in the set's stored order; released
code: SGD lr 1e-3, momentum 0.9). The attack input is the posterior difference on a fixed probe
set, delta_i = flatten(softmax(M'_i(probe)) - softmax(M(probe))): [n_probe * n_classes].

Fast path (`update_deltas`), `chunk` models at a time, with torch.func:
- the first optimiser step starts from the shared base parameters, so its gradients are
  per-sample (k = 1) or per-set (k > 1) gradients at one point: vmap(grad(loss)) with the
  parameters not batched (in_dims None), the per-sample-gradient trick;
- later steps (k > update_batch_size) vmap over the stacked per-model parameters and
  optimiser states (functional SGD with momentum / Adam, torch.optim's update rules);
- probes: the 2x2 max-pools computed as the maximum of four strided views (`probe_twin`; the
  CPU max_pool2d kernel dominated the LeNet probe forward), then either one functional_call
  per updated model on the whole probe batch (`probe_mode` "loop", the default: measured
  fastest here, bench/bench_updates.py) or `ensemble_logits` of lit_mia/shadow_farm.py, i.e.
  vmap(functional_call) over the stacked parameters ("vmap": for conv nets vmap turns each
  layer into one grouped convolution, which the CPU kernels run slower than B plain ones).
`naive_deltas` is the reference loop (deepcopy + torch.optim + step + probe forward per
model) used by the tests and the benchmark. Nets with BatchNorm are refused (their batch
statistics would couple the vmapped models).

`build_farm` trains the two base models (a callable, usually lit_mia.training.fit) and generates
both sides; the result is cached with lit_mia.cache.ModelCache keyed by every field that
determines it (data set, index pools, net, base regime, trainer, farm settings, seed).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from lit_mia.errors import ConfigError
from lit_mia.shadow_farm import ensemble_logits
from lit_mia.updates_leak.pools import UpdatePools, sample_update_sets

FARM_FORMAT = 1
"""Version of the farm's generated data; bump it when the generation changes."""

OPTIMIZERS = ("sgd", "adam")
PROBE_MODES = ("loop", "vmap")
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam defaults


@dataclass(frozen=True)
class UpdateRule:
    """One epoch of `optimizer` over each update set in batches of `batch_size`."""

    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 64

    @classmethod
    def from_settings(cls, u) -> UpdateRule:
        return cls(
            str(u.update_optimizer),
            float(u.update_lr),
            float(u.update_momentum),
            int(u.update_batch_size),
        )


@dataclass
class FarmSide:
    """One side (shadow or target): deltas [m, n_probe * C], update-set indices and labels
    [m, k], and the base model's accuracy on the other side's base set."""

    deltas: Tensor
    sets: Tensor
    labels: Tensor
    base_acc: float


@dataclass
class FarmData:
    shadow: FarmSide
    target: FarmSide
    cache_hit: bool
    seconds: float


def check_net(net: nn.Module, key: str = "net.name") -> None:
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        raise ConfigError(
            f"{key}: the updated-model farm needs a net without BatchNorm (vmapped models would "
            "share batch statistics); use lenet_mnist, lenet_cifar, mlp, fmnist_cnn or yale_cnn"
        )


class MaxPool2x2(nn.Module):
    """nn.MaxPool2d(2) (stride 2, no padding, floor) as the maximum of four strided views:
    the same values, ~10x faster than the CPU max_pool2d kernel on LeNet's 24x24 maps here.
    Used for the probe forward only (no gradients: its tie-breaking differs)."""

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
        x = x[..., :h, :w]
        a = torch.maximum(x[..., 0::2, 0::2], x[..., 1::2, 0::2])
        return torch.maximum(a, torch.maximum(x[..., 0::2, 1::2], x[..., 1::2, 1::2]))


def _is_pool2x2(m: nn.Module) -> bool:
    if type(m) is not nn.MaxPool2d:
        return False
    pair = nn.modules.utils._pair
    return (
        pair(m.kernel_size) == (2, 2)
        and pair(m.stride or m.kernel_size) == (2, 2)
        and pair(m.padding) == (0, 0)
        and pair(m.dilation) == (1, 1)
        and not m.ceil_mode
        and not m.return_indices
    )


def probe_twin(net: nn.Module) -> nn.Module:
    """A copy of `net` for the probe forward: 2x2 max-pools become MaxPool2x2 and run before
    a preceding ReLU / LeakyReLU (max commutes with a non-decreasing activation, so the values
    are unchanged and the activation touches 4x fewer elements). Same parameter names, so
    functional_call takes the same parameter dict."""
    twin = copy.deepcopy(net)
    for parent in twin.modules():
        for name, child in parent.named_children():
            if _is_pool2x2(child):
                setattr(parent, name, MaxPool2x2())
        if isinstance(parent, nn.Sequential):  # act -> pool  ==  pool -> act (monotone act)
            names = list(parent._modules)
            for a, b in zip(names, names[1:], strict=False):
                act, pool = parent._modules[a], parent._modules[b]
                if isinstance(act, nn.ReLU | nn.LeakyReLU) and isinstance(pool, MaxPool2x2):
                    parent._modules[a], parent._modules[b] = pool, act
    return twin.eval()


def _split(net: nn.Module) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = {k: v.detach() for k, v in net.named_buffers()}
    return params, buffers


def probe_posteriors(net: nn.Module, probe: Tensor) -> Tensor:
    """softmax(net(probe)) in eval mode, [n_probe, C]."""
    was = net.training
    net.eval()
    with torch.no_grad():
        out = F.softmax(net(probe), dim=-1)
    net.train(was)
    return out


def update_deltas(
    net: nn.Module,
    probe: Tensor,
    xs: Tensor,
    ys: Tensor,
    rule: UpdateRule,
    chunk: int = 64,
    probe_mode: str = "loop",
) -> Tensor:
    """Posterior differences of m updated copies of `net`, the fast path.

    xs: [m, k, C, H, W] update sets, ys: [m, k] labels, probe: [n_probe, C, H, W].
    probe_mode: "loop" (one functional_call per updated model; the fastest on the 2-core CPU
    here, where vmap turns the LeNet convs into slow grouped convolutions) or "vmap".
    Returns [m, n_probe * n_classes] float32.
    """
    if probe_mode not in PROBE_MODES:
        raise ConfigError(
            f"updates.probe_mode must be one of {', '.join(PROBE_MODES)}, got {probe_mode!r}"
        )
    if rule.optimizer not in OPTIMIZERS:
        raise ConfigError(
            f"updates.update_optimizer must be one of {', '.join(OPTIMIZERS)}, got "
            f"{rule.optimizer!r}"
        )
    check_net(net)
    was = net.training
    params, buffers = _split(net)
    base = probe_posteriors(net, probe)

    def loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(net, (p, buffers), (x,)), y)

    twin = probe_twin(net)

    def logits(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(twin, (p, buffers), (x,))

    grad_shared = vmap(grad(loss), in_dims=(None, 0, 0), randomness="different")
    grad_each = vmap(grad(loss), in_dims=(0, 0, 0), randomness="different")
    m, k = ys.shape
    bs = max(1, int(rule.batch_size))
    out = []
    try:
        for s in range(0, m, chunk):
            x, y = xs[s : s + chunk], ys[s : s + chunk]
            net.train()
            p, state = None, None
            for t, b in enumerate(range(0, k, bs)):
                xb, yb = x[:, b : b + bs], y[:, b : b + bs]
                g = grad_shared(params, xb, yb) if p is None else grad_each(p, xb, yb)
                start = params if p is None else p
                p, state = _step(start, g, state, t + 1, rule, shared=p is None)
            net.eval()
            with torch.no_grad():
                if probe_mode == "vmap":  # the shadow farm's primitive (lit_mia/shadow_farm.py)
                    bufs = {n: v.expand(len(y), *v.shape) for n, v in buffers.items()}
                    logit = ensemble_logits(twin, p, bufs, probe, per_model=False)  # [B, n, C]
                else:  # one plain forward per model: mkldnn convs on the probe batch
                    logit = torch.stack(
                        [logits({n: v[i] for n, v in p.items()}, probe) for i in range(len(y))]
                    )
                post = F.softmax(logit, dim=-1)
            out.append((post - base).flatten(1))
    finally:
        net.train(was)
    return torch.cat(out)


def _step(p, g, state, t: int, rule: UpdateRule, shared: bool):
    """One functional torch.optim step for every model; `shared`: p is the unbatched base."""
    lr = rule.lr
    new, st = {}, {}
    with torch.no_grad():
        for name, gi in g.items():
            pi = p[name].unsqueeze(0) if shared else p[name]
            if rule.optimizer == "sgd":
                if rule.momentum:
                    buf = gi if state is None else state[name] * rule.momentum + gi
                    st[name] = buf
                else:
                    buf = gi
                new[name] = pi - lr * buf
            else:  # adam
                b1, b2 = ADAM_BETAS
                m0, v0 = (0.0, 0.0) if state is None else state[name]
                m1 = gi * (1 - b1) + m0 * b1
                v1 = gi * gi * (1 - b2) + v0 * b2
                mh, vh = m1 / (1 - b1**t), v1 / (1 - b2**t)
                new[name] = pi - lr * mh / (vh.sqrt() + ADAM_EPS)
                st[name] = (m1, v1)
    return new, st


def naive_deltas(net: nn.Module, probe: Tensor, xs: Tensor, ys: Tensor, rule: UpdateRule):
    """Reference: per model, deepcopy + torch.optim + one epoch of steps + probe forward."""
    base = probe_posteriors(net, probe)
    out = []
    for x, y in zip(xs, ys, strict=True):
        model = copy.deepcopy(net).train()
        if rule.optimizer == "sgd":
            opt = torch.optim.SGD(model.parameters(), lr=rule.lr, momentum=rule.momentum)
        else:
            opt = torch.optim.Adam(model.parameters(), lr=rule.lr)
        for b in range(0, len(y), rule.batch_size):
            opt.zero_grad()
            F.cross_entropy(
                model(x[b : b + rule.batch_size]), y[b : b + rule.batch_size]
            ).backward()
            opt.step()
        out.append((probe_posteriors(model, probe) - base).flatten())
    return torch.stack(out)


# ---------------------------------------------------------------- both sides, cached
def farm_fields(cfg, bundle_name: str, n_total: int, pools: UpdatePools) -> dict:
    """Everything that determines the generated data (the cache key)."""
    u = cfg.updates
    keys = (
        "m_shadow", "m_target", "k", "n_probe", "base_size", "base_epochs", "base_batch_size",
        "shadow_pool", "target_pool", "label_dirichlet", "update_optimizer", "update_lr",
        "update_momentum", "update_batch_size", "probe_mode",
    )  # fmt: skip
    t = cfg.trainer
    return {
        "format": FARM_FORMAT,
        "dataset": bundle_name,
        "n_total": int(n_total),
        "pools": {k: np.asarray(v) for k, v in pools.to_dict().items()},
        "net": cfg.net,
        "target": cfg.target,
        "trainer": {k: t[k] for k in ("accelerator", "precision", "deterministic", "devices")},
        "updates": {k: u[k] for k in keys},
        "seed": int(cfg.seed),
        "torch": torch.__version__.split("+")[0],
    }


def accuracy(net: nn.Module, x: Tensor, y: Tensor) -> float:
    was = net.training
    net.eval()
    with torch.no_grad():
        acc = (net(x).argmax(-1) == y).float().mean().item()
    net.train(was)
    return float(acc)


def build_farm(
    cfg,
    bundle,
    pools: UpdatePools,
    fit_base: Callable[[np.ndarray, int], nn.Module],
    cache=None,
) -> FarmData:
    """Both sides' deltas (from the cache when an entry for exactly these fields exists).

    fit_base(train_idx, seed) -> trained base model (eval mode, CPU). Shadow base: seed + 1,
    target base: seed + 2; update sets from default_rng((seed, side)).
    """
    fields = farm_fields(cfg, bundle.name, len(bundle), pools)
    if cache is not None:
        hit = cache.load(fields)
        if hit is not None:
            sides = {
                s: FarmSide(
                    hit[f"{s}_deltas"],
                    hit[f"{s}_sets"],
                    hit[f"{s}_labels"],
                    float(hit[f"{s}_base_acc"]),
                )
                for s in ("shadow", "target")
            }
            return FarmData(sides["shadow"], sides["target"], True, 0.0)
    u = cfg.updates
    rule = UpdateRule.from_settings(u)
    probe = bundle.x[torch.as_tensor(pools.probe)]
    y_all = bundle.y.numpy()
    sides, t_farm = {}, 0.0
    spec = {
        "shadow": (pools.shadow_base, pools.shadow_pool, int(u.m_shadow), 1, pools.target_base),
        "target": (pools.target_base, pools.target_pool, int(u.m_target), 2, pools.shadow_base),
    }
    for side, (base_idx, pool, m, offset, other) in spec.items():
        net = fit_base(base_idx, int(cfg.seed) + offset)
        rng = np.random.default_rng((int(cfg.seed), offset))
        sets = sample_update_sets(pool, y_all[pool], m, int(u.k), rng, float(u.label_dirichlet))
        st = torch.as_tensor(sets)
        t0 = time.perf_counter()
        xs, ys = bundle.x[st], bundle.y[st]
        deltas = update_deltas(net, probe, xs, ys, rule, int(u.chunk), str(u.probe_mode))
        t_farm += time.perf_counter() - t0
        oi = torch.as_tensor(other)
        sides[side] = FarmSide(deltas, st, bundle.y[st], accuracy(net, bundle.x[oi], bundle.y[oi]))
    if cache is not None:
        tensors = {}
        for s, d in sides.items():
            tensors |= {
                f"{s}_deltas": d.deltas,
                f"{s}_sets": d.sets,
                f"{s}_labels": d.labels,
                f"{s}_base_acc": torch.tensor(d.base_acc),
            }
        cache.save(fields, tensors)
    return FarmData(sides["shadow"], sides["target"], False, t_farm)


__all__ = [
    "FarmData",
    "FarmSide",
    "UpdateRule",
    "build_farm",
    "farm_fields",
    "naive_deltas",
    "update_deltas",
]
