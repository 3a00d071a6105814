"""The probe forward of many updated copies of one base net, computed as differences
(`updates.probe_mode: delta`; Salem et al. USENIX Security'20, §3.1; issue 11).

An updated model differs from its base by parameter changes dW that are ~1e-9 of W for a
sample the base already fits. Computing both forwards in float32 and subtracting loses the
difference (cancellation: ~10% relative error on mnist5k's LeNet), which is why the farm runs
in float64, whose CPU convolutions are ~4x slower than float32's. This module instead carries
the base activations a (float64, computed once, shared by all models) and, per model, the
activation difference D = a_updated - a (float32: its own relative precision ~1e-7, whatever
its size), layer by layer, each rule exact in D:

    Linear / Conv2d   D' = f(D; W + dW) + f(a; dW) + db    (f linear in input and weight;
                      both terms in one float32 call: input [D, a] against weights [W+dW, dW])
    ReLU / LeakyReLU  D' = g(a + D) - g(a): slope * D where a and a + D lie on the same side
                      of 0, else the direct float32 difference (then |a| <= |D|, no cancellation)
    MaxPool2d 2x2     D' = max over the window of (a - max(a)) + D   (a - max(a) <= 0 shared;
                      0 at the base argmax), before a monotone activation that precedes it
                      (pool and activation commute, as in farm.probe_twin)
    Normalize, Flatten, Dropout (eval): linear, no parameters: applied to D without the shift

The first convolution (its input, the probes, is the same for every model: D = 0) and the
max-pool after it are fused into one GEMM of all models' kernel changes against the probes'
patches, ordered window position first, so the pool is a maximum over 4 contiguous blocks;
its output buffers are kept across calls (`memo`), as are the base activations and the
shared coefficients of every layer (computed once per farm call, not per chunk).

The output log-posterior difference is D_z - log1p(sum_j p_j expm1(D_z,j)) with the base
softmax p in float64 (the log-sum-exp difference without cancellation; for a probe whose
logits move by 0.5 or more, the plain float64 difference of the two log-sum-exps). Cost:
float32 convolutions, each layer after the first twice (f(D; W + dW) per model, f(a; dW) for
all models in one call); measured in bench/bench_updates.py against the float64 naive loop and
farm.update_deltas in float64 (tests/test_updates_farm.py checks the differences against the
float64 path).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.errors import ConfigError
from lit_mia.nets import Normalize

ACTS = (nn.ReLU, nn.LeakyReLU)
PASS = (nn.Flatten, nn.Dropout, nn.Identity)
SUPPORTED = "Conv2d, Linear, ReLU, LeakyReLU, MaxPool2d(2), Flatten, Dropout, Normalize"


def leaves(net: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The net as a flat list of (parameter-name prefix, leaf module), nested Sequentials
    unrolled; an activation followed by a 2x2 max-pool is swapped to pool-then-activation."""
    out: list[tuple[str, nn.Module]] = []
    for name, m in net.named_children():
        if isinstance(m, nn.Sequential):
            out += leaves(m, f"{prefix}{name}.")
        elif isinstance(m, (nn.Conv2d, nn.Linear, Normalize, nn.MaxPool2d, *ACTS, *PASS)):
            out.append((f"{prefix}{name}.", m))
        else:
            raise ConfigError(
                f"updates.probe_mode=delta supports nets built from {SUPPORTED}; "
                f"{type(m).__name__} is not one of them: use probe_mode=loop"
            )
    for i in range(len(out) - 1):
        if isinstance(out[i][1], ACTS) and isinstance(out[i + 1][1], nn.MaxPool2d):
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _check(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d):
        ok = m.groups == 1 and m.padding_mode == "zeros" and isinstance(m.padding, tuple)
    elif isinstance(m, nn.MaxPool2d):
        pair = nn.modules.utils._pair
        ok = (
            pair(m.kernel_size) == (2, 2) and pair(m.stride or m.kernel_size) == (2, 2)
            and pair(m.padding) == (0, 0) and pair(m.dilation) == (1, 1) and not m.ceil_mode
        )  # fmt: skip
    else:
        ok = True
    if not ok:
        raise ConfigError(
            f"updates.probe_mode=delta supports plain convolutions and 2x2 max-pools, got "
            f"{m!r}: use probe_mode=loop"
        )


def check_delta_net(net: nn.Module) -> None:
    """ConfigError unless every leaf of `net` has a difference rule."""
    for _, m in leaves(net):
        _check(m)


def _windows(x: Tensor) -> Tensor:
    """[..., H, W] -> [..., H // 2, 2, W // 2, 2] (odd edges dropped, as MaxPool2d(2))."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    x = x[..., : 2 * h, : 2 * w]
    return x.unflatten(-1, (w, 2)).unflatten(-3, (h, 2))


def _pool_delta(a: Tensor, d: Tensor | None, memo: dict, key) -> tuple[Tensor, Tensor | None]:
    """(max-pooled a, its difference): max over the window of (a - max a) + D."""

    def base():
        win = _windows(a)
        top = win.amax(dim=(-3, -1))
        return top, (win - top[..., None, :, None]).float()  # gaps <= 0, 0 at the argmax

    top, gaps = _memo(memo, key, base)
    if d is None:
        return top, None
    x = _windows(d).add_(gaps)  # in place (d is this forward's own): [..., h, 2, w, 2]
    # pairwise maxima of the four window positions: ~5x faster than a strided amax
    a = torch.maximum(x[..., 0, :, 0], x[..., 1, :, 0])
    return top, torch.maximum(a, torch.maximum(x[..., 0, :, 1], x[..., 1, :, 1]))


def _act_delta(m: nn.Module, a: Tensor, d: Tensor, memo: dict, key) -> Tensor:
    """g(a + D) - g(a) for g = LeakyReLU(s) (ReLU: s = 0), exact in D: for a > 0 it is
    max(D, s D + (s - 1) a), for a <= 0 max(s D, D + (1 - s) a); the coefficients depend on
    the base activation only (shared by every model)."""
    slope = float(m.negative_slope) if isinstance(m, nn.LeakyReLU) else 0.0

    def coefficients():
        a32 = a.float()
        pos = a32 > 0
        if slope == 0.0:  # max(D, -a) for a > 0, max(D + a, 0) for a <= 0
            return torch.where(pos, 0.0, a32), torch.where(pos, -a32, 0.0)
        one = torch.ones_like(a32)
        p1 = torch.where(pos, one, slope * one)
        p2 = torch.where(pos, slope * one, one)
        q2 = torch.where(pos, (slope - 1) * a32, (1 - slope) * a32)
        return p1, p2, q2

    c = _memo(memo, key, coefficients)
    if slope == 0.0:
        return torch.maximum(d + c[0], c[1])
    p1, p2, q2 = c
    return torch.maximum(p1 * d, torch.addcmul(q2, p2, d))


def _memo(memo: dict, key, fn):
    if key not in memo:
        memo[key] = fn()
    return memo[key]


def _first_conv_pool(m: nn.Conv2d, a: Tensor, w: Tensor, b: Tensor | None, dw: Tensor,
                     db: Tensor | None, memo: dict) -> tuple[Tensor, Tensor]:  # fmt: skip
    """A first layer Conv2d (stride 1, no padding) and the 2x2 max-pool after it, fused: one
    GEMM of all models' kernel changes against the probes' patches ordered window position
    first, so the pool is a maximum over 4 contiguous blocks; the bias is added after the
    pool (max(x + c) = max(x) + c). Returns (pooled base [N, out, h, w] float64, pooled
    differences [B, N, out, h, w] float32)."""
    n_models, n = dw.shape[0], a.shape[0]

    def base():
        kh, kw = m.kernel_size
        ho, wo = a.shape[-2] - kh + 1, a.shape[-1] - kw + 1
        h, w_ = ho // 2, wo // 2
        cols = F.unfold(a.float(), (kh, kw)).unflatten(-1, (ho, wo))[..., : 2 * h, : 2 * w_]
        cols = cols.unflatten(-1, (w_, 2)).unflatten(-3, (h, 2))  # [N, K, h, 2, w, 2]
        cols = cols.permute(1, 3, 5, 0, 2, 4).reshape(cols.shape[1], -1)  # [K, 4 * N*h*w]
        out = F.conv2d(a, w, b)[..., : 2 * h, : 2 * w_]
        win = out.unflatten(-1, (w_, 2)).unflatten(-3, (h, 2))  # [N, out, h, 2, w, 2]
        top = win.amax(dim=(-3, -1))
        gaps = (win - top[..., None, :, None]).float().permute(1, 3, 5, 0, 2, 4)
        return cols, gaps.reshape(gaps.shape[0], 4, -1), top  # gaps [out, 4, N*h*w]

    cols, gaps, top = _memo(memo, "first", base)
    k = dw.flatten(0, 1).flatten(1)
    # buffers kept across the farm's chunks: a fresh 100+ MB output costs more in page faults
    # than the GEMM itself (measured 70 vs 18 ms for 64 LeNet models)
    buf = memo.get("first_out")
    if buf is None or buf.shape[0] < k.shape[0]:
        buf = memo["first_out"] = torch.empty(k.shape[0], cols.shape[1])
        memo["first_pool"] = torch.empty(k.shape[0], gaps.shape[-1])
    out = torch.matmul(k, cols, out=buf[: k.shape[0]]).view(n_models, -1, 4, gaps.shape[-1])
    pool_buf = memo["first_pool"][: k.shape[0]].view(n_models, -1, gaps.shape[-1])
    pooled = torch.amax(out.add_(gaps), dim=2, out=pool_buf)  # [B, out, N*h*w]
    if db is not None:
        pooled.add_(db[:, :, None])
    return top, pooled.view(n_models, -1, n, *top.shape[-2:]).transpose(1, 2)


def _affine(m: nn.Module, a: Tensor, d: Tensor | None, w: Tensor, b: Tensor | None,
            dw: Tensor, db: Tensor | None) -> Tensor:  # fmt: skip
    """Difference of an affine layer for B models: a [N, ...] (float64), d [B, N, ...] or None,
    w, b the base parameters (float64), dw [B, *w.shape], db [B, *b.shape] (float32).
    f(a; dW) + db for all models in one call (the input is shared), then f(D; W + dW) per
    model (a first layer has D = 0: the probes are the same for every model)."""
    a32, w32 = a.float(), w.float()
    n_models = dw.shape[0]
    if isinstance(m, nn.Conv2d):
        flat_db = None if db is None else db.flatten()
        shared = F.conv2d(a32, dw.flatten(0, 1), flat_db, m.stride, m.padding, m.dilation)
        shared = shared.unflatten(1, (n_models, -1)).transpose(0, 1)  # [B, N, out, H, W]
        if d is None:
            return shared
        out = torch.stack(
            [F.conv2d(d[i], w32 + dw[i], None, m.stride, m.padding, m.dilation)
             for i in range(n_models)]
        )  # fmt: skip
        return out.add_(shared)
    shared = a32 @ dw.transpose(1, 2)  # [B, N, out]
    if db is not None:
        shared = shared + db[:, None]
    if d is None:
        return shared
    return torch.baddbmm(shared, d, (w32 + dw).transpose(1, 2))


def _fusable(m: nn.Module, nxt: nn.Module | None) -> bool:
    plain = m.stride == (1, 1) and m.dilation == (1, 1) and m.padding == (0, 0)
    return plain and isinstance(nxt, nn.MaxPool2d)


def delta_logits(net: nn.Module, params: dict[str, Tensor], buffers: dict[str, Tensor],
                 dparams: dict[str, Tensor], probe: Tensor,
                 memo: dict | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """(base logits [N, C] float64, logit differences [B, N, C] float32) of the models with
    parameters params + dparams (params, buffers float64; dparams [B, ...] float32) on
    `probe` [N, ...] (eval mode: dropout is the identity). `memo`: a dict kept across calls
    with the same net, params and probe (the farm's chunks): the base activations and what
    derives from them are computed once."""
    memo = {} if memo is None else memo
    layers = _memo(memo, "layers", lambda: leaves(net))
    a = probe.to(torch.float64)
    d: Tensor | None = None
    skip = False
    for i, (pre, m) in enumerate(layers):
        if skip:  # the pool fused into the first convolution
            skip = False
            continue
        if isinstance(m, nn.Conv2d | nn.Linear):
            w, b = params[pre + "weight"], params.get(pre + "bias")
            dw, db = dparams[pre + "weight"], dparams.get(pre + "bias")
            nxt = layers[i + 1][1] if i + 1 < len(layers) else None
            if d is None and isinstance(m, nn.Conv2d) and _fusable(m, nxt):
                a, d = _first_conv_pool(m, a, w, b, dw, db, memo)
                skip = True
                continue
            d = _affine(m, a, d, w, b, dw, db)
            a = _memo(memo, ("a", i), lambda m=m, a=a, w=w, b=b: (
                F.conv2d(a, w, b, m.stride, m.padding, m.dilation)
                if isinstance(m, nn.Conv2d) else F.linear(a, w, b)))  # fmt: skip
        elif isinstance(m, Normalize):
            std = buffers[pre + "std"]
            a = _memo(memo, ("a", i), lambda a=a, pre=pre, std=std: (
                (a - buffers[pre + "mean"]) / std))  # fmt: skip
            d = None if d is None else d / std.float()
        elif isinstance(m, nn.MaxPool2d):
            a, d = _pool_delta(a, d, memo, ("pool", i))
        elif isinstance(m, ACTS):
            if d is not None:
                d = _act_delta(m, a, d, memo, ("act", i))
            a = _memo(memo, ("a", i), lambda m=m, a=a: m(a))
        elif isinstance(m, nn.Flatten):
            a = a.flatten(1)
            d = None if d is None else d.flatten(2)
    if d is None:
        d = torch.zeros(next(iter(dparams.values())).shape[0], *a.shape)
    return a, d


def delta_log_posteriors(logits: Tensor, dlogits: Tensor, log: bool) -> Tensor:
    """log p_updated - log p_base (log) or p_updated - p_base, [B, N, C] float64, from the
    base logits [N, C] and the logit differences [B, N, C], without cancellation."""
    z = logits.double()
    logp = torch.log_softmax(z, -1)
    dz = dlogits.double()
    # small changes: log1p(sum_j p_j expm1(dz_j)) keeps them; large ones (e.g. the top class
    # falling by 40) would round the sum to -1 there: the direct difference is exact enough
    small = torch.log1p((logp.exp() * torch.expm1(dz)).sum(-1, keepdim=True))
    big = torch.logsumexp(z + dz, -1, keepdim=True) - torch.logsumexp(z, -1, keepdim=True)
    dl = dz - torch.where(dz.abs().amax(-1, keepdim=True) < 0.5, small, big)
    return dl if log else logp.exp() * torch.expm1(dl)


__all__ = ["check_delta_net", "delta_log_posteriors", "delta_logits", "leaves"]
