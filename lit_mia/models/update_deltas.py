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
  fastest here, bench/bench_updates.py) or `ensemble_logits` of lit_mia/models/shadow_farm.py, i.e.
  vmap(functional_call) over the stacked parameters ("vmap": for conv nets vmap turns each
  layer into one grouped convolution, which the CPU kernels run slower than B plain ones),
  or ("delta") the base forward once in float64 and each model's activation differences in
  float32 (delta_forward.py: float64-grade differences at float32 convolution speed; the
  parameter step then runs in float64 whatever `dtype`).
`naive_deltas` is the reference loop (deepcopy + torch.optim + step + probe forward per
model) used by the tests and the benchmark. Nets with BatchNorm are refused (their batch
statistics would couple the vmapped models).

Precision (`dtype`, `log`): one SGD step of lr 1e-3 on a sample the base model already puts
p_y > 0.99 on moves the parameters by ~1e-9, below float32's resolution of parameters ~0.1:
on mnist5k's LeNet ~1% of float32 deltas were exactly zero and the 10th-percentile delta norm
was 5e-6 (issue 11). The farm (update_farm.py) therefore runs the update and the probe forward
in float64 and keeps log-posterior differences (representation.py). Both sides, several shadow
base models and the cache are in update_farm.py.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from lit_mia.errors import ConfigError
from lit_mia.models.delta_forward import check_delta_net, delta_log_posteriors, delta_logits
from lit_mia.models.shadow_farm import ensemble_logits
from lit_mia.models.update_choices import PROBE_MODES, UPDATE_OPTIMIZERS
from lit_mia.progress import steps

# models per delta_forward call: their [models, probes, ...] intermediates stay under glibc's
# 32 MB mmap threshold, so memory is reused instead of page-faulted in (LeNet, 100 probes:
# 469 models/s at 16, 453 at 32, 316 at 64, bench of this session)
DELTA_CHUNK = 16
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


def check_net(net: nn.Module, key: str = "net.name", name: str | None = None) -> None:
    """The one BatchNorm refusal of update leakage: the updated models of the farm are vmapped
    and would share batch statistics. `name`: the net's registry name, for the message."""
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        got = f", got {name!r}" if name is not None else ""
        raise ConfigError(
            f"{key} must be a net without BatchNorm for the updated-model farm (vmapped models "
            f"would share batch statistics): e.g. lenet_mnist, lenet_cifar, mlp, fmnist_cnn or "
            f"yale_cnn{got}"
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
            for a, b in itertools.pairwise(names):
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
    dtype: torch.dtype = torch.float32,
    log: bool = False,
) -> Tensor:
    """Posterior differences of m updated copies of `net`, the fast path.

    xs: [m, k, C, H, W] update sets, ys: [m, k] labels, probe: [n_probe, C, H, W].
    probe_mode: "loop" (one functional_call per updated model; vmap turns the LeNet convs into
    slow grouped convolutions on this CPU), "vmap", or "delta" (delta_forward.py: the step in
    float64, the probe forward as float32 differences from a float64 base forward).
    dtype: precision of the updated parameters, optimiser state and probe forward (gradients
    are taken in the net's float32); float64 keeps updates of ~1e-9 that float32 rounds away.
    log: log-posterior differences log p_updated - log p_base instead of p_updated - p_base.
    Returns [m, n_probe * n_classes] in `dtype`.
    """
    if probe_mode not in PROBE_MODES:
        raise ConfigError(
            f"updates.probe_mode must be one of {', '.join(PROBE_MODES)}, got {probe_mode!r}"
        )
    if rule.optimizer not in UPDATE_OPTIMIZERS:
        raise ConfigError(
            f"updates.update_optimizer must be one of {', '.join(UPDATE_OPTIMIZERS)}, got "
            f"{rule.optimizer!r}"
        )
    check_net(net)
    delta = probe_mode == "delta"
    out_dtype = dtype
    if delta:
        check_delta_net(net)
        dtype = torch.float64  # the step in float64: dW ~ 1e-9 W
    was = net.training
    params, buffers = _split(net)
    twin = probe_twin(net).to(dtype)
    hi = {n: v.to(dtype) for n, v in params.items()}  # the base point in `dtype`
    hbuf = {n: v.to(dtype) for n, v in buffers.items()}
    memo: dict = {}  # probe_mode "delta": the base activations, shared by every chunk
    probe = probe.to(dtype)
    post = F.log_softmax if log else F.softmax
    if not delta:
        with torch.no_grad():
            base = post(functional_call(twin, (hi, hbuf), (probe,)), dim=-1)

    def loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(net, (p, buffers), (x,)), y)

    def logits(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(twin, (p, hbuf), (x,))

    grad_shared = vmap(grad(loss), in_dims=(None, 0, 0), randomness="different")
    grad_each = vmap(grad(loss), in_dims=(0, 0, 0), randomness="different")
    m, k = ys.shape
    bs = max(1, int(rule.batch_size))
    out = []
    try:
        for s in steps(range(0, m, chunk), f"updated models ({m}, chunks of {chunk})"):
            x, y = xs[s : s + chunk], ys[s : s + chunk]
            net.train()
            p, state = None, None
            for t, b in enumerate(range(0, k, bs)):
                xb, yb = x[:, b : b + bs], y[:, b : b + bs]
                if p is None:
                    g = grad_shared(params, xb, yb)
                else:
                    g = grad_each({n: v.float() for n, v in p.items()}, xb, yb)
                g = {n: v.to(dtype) for n, v in g.items()}
                start = hi if p is None else p
                p, state = _step(start, g, state, t + 1, rule, shared=p is None)
            net.eval()
            if delta:  # differences carried layer by layer (delta_forward.py)
                with torch.no_grad():
                    dp = {n: (v - hi[n].unsqueeze(0)).float() for n, v in p.items()}
                    for j in range(0, len(y), DELTA_CHUNK):
                        part = {n: v[j : j + DELTA_CHUNK] for n, v in dp.items()}
                        z, dz = delta_logits(net, hi, hbuf, part, probe, memo)
                        out.append(delta_log_posteriors(z, dz, log).flatten(1))
                continue
            with torch.no_grad():
                if (
                    probe_mode == "vmap"
                ):  # the shadow farm's primitive (lit_mia/models/shadow_farm.py)
                    bufs = {n: v.expand(len(y), *v.shape) for n, v in hbuf.items()}
                    logit = ensemble_logits(twin, p, bufs, probe, per_model=False)  # [B, n, C]
                else:  # one plain forward per model: mkldnn convs on the probe batch
                    logit = torch.stack(
                        [logits({n: v[i] for n, v in p.items()}, probe) for i in range(len(y))]
                    )
            out.append((post(logit, dim=-1) - base).flatten(1))
    finally:
        net.train(was)
    return torch.cat(out).to(out_dtype)


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


def naive_deltas(
    net: nn.Module,
    probe: Tensor,
    xs: Tensor,
    ys: Tensor,
    rule: UpdateRule,
    dtype: torch.dtype = torch.float32,
    log: bool = False,
) -> Tensor:
    """Reference: per model, deepcopy (in `dtype`) + torch.optim + one epoch of steps + probe
    forward; `log` as in update_deltas."""
    net = copy.deepcopy(net).to(dtype)
    probe = probe.to(dtype)
    post = F.log_softmax if log else F.softmax

    def posteriors(model: nn.Module) -> Tensor:
        model.eval()
        with torch.no_grad():
            return post(model(probe), dim=-1)

    base = posteriors(net)
    out = []
    for x, y in zip(xs, ys, strict=True):
        model = copy.deepcopy(net).train()
        x = x.to(dtype)
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
        out.append((posteriors(model) - base).flatten())
    return torch.stack(out)


def accuracy(net: nn.Module, x: Tensor, y: Tensor) -> float:
    was = net.training
    net.eval()
    with torch.no_grad():
        acc = (net(x).argmax(-1) == y).float().mean().item()
    net.train(was)
    return float(acc)


__all__ = [
    "UpdateRule",
    "accuracy",
    "check_net",
    "naive_deltas",
    "probe_twin",
    "update_deltas",
]
