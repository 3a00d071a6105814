"""Interval bound propagation (IBP) and the net folding that lets convex_adversarial read our nets.

IBP (Gowal et al., "On the effectiveness of interval bound propagation for training verifiably
robust models", 2018; the box domain of Mirman et al., DiffAI, ICML 2018): the input box
[lower, upper] = [x - eps, x + eps] ∩ [0, 1] (pixel space, docs/explanation/measurement.md) is
pushed through a flat nn.Sequential layer by layer:

- affine (Linear, Conv2d, eval BatchNorm) in center/radius form: c' = W c + b, r' = |W| r;
- Normalize (per-channel (x - m) / s with s > 0) and monotone layers (ReLU, LeakyReLU with slope
  >= 0, MaxPool2d, AvgPool2d, Flatten, Identity, eval Dropout) map lower -> lower, upper -> upper;
- train-mode Dropout draws one mask and applies it to both ends (sound for that sampled net).

Worst-case logits, Gowal's form: z_y = lower_y, z_j = upper_j. The tighter "elided" form folds
the last Linear into the bound: margin_j = (W_y - W_j) h + b_y - b_j over the box of h, the
penultimate activations, gives lower bounds on z_y - z_j; `-margins` are worst-case logits
with the same softmax_y lower-bound meaning (CE(-m, y) is the robust CE of Gowal's code).

Shapes: x [B, C, H, W] in [0, 1], y [B] int64; logits, bounds and margins [B, K]; masks [B].
Every net that is not a (nested) nn.Sequential of the layers above, e.g. `wide_resnet` with its
residual blocks, or BatchNorm in train mode, gets a one-line ConfigError naming layer and net.

`fold_normalize` rewrites a net for convex_adversarial (Wong & Kolter 2018), which only knows
Linear, Conv2d (groups 1, dilation 1, zero padding), ReLU and Flatten: Normalize (and eval
BatchNorm) is folded exactly into the next affine layer, or becomes an equal 1x1 convolution.
`dual_worst_case_logits` is the wrapper the dual target trains and verifies with. Shim: the
library's transposed conv drops `output_padding`, so a stride-2 conv on an even size (3x3,
padding 1, as in fmnist_cnn) fails; `_conv_shim` swaps in a transpose with the right size for
the duration of the call (site-packages untouched).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_mia.errors import ConfigError
from lit_mia.nets import Normalize

SUPPORTED = (
    "Normalize, Linear, Conv2d, ReLU, LeakyReLU, MaxPool2d, AvgPool2d, Flatten, Dropout, "
    "Identity, BatchNorm1d/2d in eval mode, nested nn.Sequential"
)
DUAL_SUPPORTED = (
    "Normalize, Linear, Conv2d (groups=1, dilation=1, zero padding), ReLU, Flatten, Identity, "
    "Dropout and BatchNorm1d/2d in eval mode, nested nn.Sequential; the last layer Linear"
)
_MONOTONE = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Identity)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)

Layers = list[tuple[str, nn.Module]]  # (position, leaf module)


# ---------------------------------------------------------------- walking the net
def _leaves(net: nn.Module, prefix: str = "") -> Layers:
    """(position, module) of every non-Sequential module, nested nn.Sequential flattened."""
    if not isinstance(net, nn.Sequential):
        return [(prefix or "0", net)]
    out: Layers = []
    for name, child in net.named_children():
        out += _leaves(child, f"{prefix}.{name}" if prefix else name)
    return out


def _ibp_problem(layer: nn.Module) -> str | None:
    """Why IBP cannot bound `layer` in its current mode, or None if it can."""
    if isinstance(layer, _BN):
        if layer.training or layer.running_mean is None:
            return "BatchNorm in train mode (batch statistics); call net.eval()"
        return None
    if isinstance(layer, nn.LeakyReLU):
        return None if layer.negative_slope >= 0 else "negative slope < 0 is not monotone"
    if isinstance(layer, nn.MaxPool2d) and layer.return_indices:
        return "return_indices=True"
    if isinstance(layer, (Normalize, nn.Linear, nn.Conv2d, nn.Dropout, *_MONOTONE)):
        return None
    return ""


def _checked(net: nn.Module, net_name: str) -> Layers:
    return _supported_leaves(net, net_name, _ibp_problem, "IBP cannot bound", SUPPORTED)


def _supported_leaves(net, net_name: str, problem, what: str, supported: str) -> Layers:
    """`_leaves(net)`, or a ConfigError naming the first layer `problem` rejects (its reason,
    position and the net) and what is supported."""
    layers = _leaves(net)
    for pos, layer in layers:
        why = problem(layer)
        if why is not None:
            why = f" ({why})" if why else ""
            raise ConfigError(
                f"{what} layer {type(layer).__name__}{why} (position {pos}) of net "
                f"{net_name}: supported are {supported}"
            )
    return layers


def check_supported(net: nn.Module, name: str = "net") -> None:
    """Raise ConfigError naming layer and net iff `interval_bounds` cannot bound `net` as it
    is now (train-mode BatchNorm included); call it at target construction."""
    _checked(net, name)


# ---------------------------------------------------------------- interval propagation
def _bn_scale(bn: nn.Module, ndim: int) -> Tensor:
    """Per-channel multiplier of an eval BatchNorm, shaped to broadcast over [B, C, ...]."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    return scale.view(1, -1, *([1] * (ndim - 2)))


def _step(layer: nn.Module, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """Bounds after one supported leaf layer."""
    if isinstance(layer, (nn.Linear, nn.Conv2d, *_BN)):
        c, r = (hi + lo) / 2, (hi - lo) / 2
        c = layer(c)
        if isinstance(layer, nn.Linear):
            r = F.linear(r, layer.weight.abs())
        elif isinstance(layer, nn.Conv2d):
            r = layer._conv_forward(r, layer.weight.abs(), None)  # same padding/stride/groups
        else:
            r = r * _bn_scale(layer, r.dim()).abs()
        return c - r, c + r
    if isinstance(layer, nn.Dropout):
        if not layer.training or layer.p == 0:
            return lo, hi
        mask = F.dropout(torch.ones_like(lo), layer.p, training=True)  # one mask, >= 0
        return lo * mask, hi * mask
    return layer(lo), layer(hi)  # Normalize (s > 0), ReLU, LeakyReLU, pools, Flatten, Identity


def _propagate(layers: Layers, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    for _, layer in layers:
        lo, hi = _step(layer, lo, hi)
    return lo, hi


def interval_bounds(
    net: nn.Module, lower: Tensor, upper: Tensor, *, net_name: str = "net"
) -> tuple[Tensor, Tensor]:
    """Elementwise bounds [lower', upper'] of net(x') for every x' in the box [lower, upper]."""
    return _propagate(_checked(net, net_name), lower, upper)


def input_box(x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """The L_inf ball around x intersected with the image box [0, 1]."""
    return (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)


def worst_case_logits(
    net: nn.Module, x: Tensor, y: Tensor, eps: float, *, net_name: str = "net"
) -> Tensor:
    """Gowal's worst-case logits [B, K]: z_y = lower_y, z_j = upper_j over the eps-ball."""
    lo, hi = interval_bounds(net, *input_box(x, eps), net_name=net_name)
    onehot = F.one_hot(y, lo.shape[1]).bool()
    return torch.where(onehot, lo, hi)


def margin_lower_bounds(
    net: nn.Module, x: Tensor, y: Tensor, eps: float, *, net_name: str = "net"
) -> Tensor:
    """Lower bounds [B, K] of z_y - z_j over the eps-ball, entry y = 0.

    The last Linear is elided: its rows W_y - W_j act on the box of the penultimate activations
    h in center/radius form, (W_y - W_j) c + b_y - b_j - |W_y - W_j| r, which is never looser
    than lower_y - upper_j. Nets not ending in a Linear on [B, H] get the naive form.
    """
    layers = _checked(net, net_name)
    lo, hi = input_box(x, eps)
    last = layers[-1][1]
    if isinstance(last, nn.Linear):
        lo, hi = _propagate(layers[:-1], lo, hi)
        if lo.dim() == 2:
            c, r = (hi + lo) / 2, (hi - lo) / 2  # [B, H]
            w = last.weight  # [K, H]
            dw = w[y].unsqueeze(1) - w.unsqueeze(0)  # [B, K, H]; row y is 0
            m = (dw @ c.unsqueeze(2) - dw.abs() @ r.unsqueeze(2)).squeeze(2)  # [B, K]
            if last.bias is not None:
                m = m + (last.bias[y].unsqueeze(1) - last.bias.unsqueeze(0))
            return m
        lo, hi = _step(last, lo, hi)
    else:
        lo, hi = _propagate(layers, lo, hi)
    onehot = F.one_hot(y, lo.shape[1]).bool()
    return (lo.gather(1, y[:, None]) - hi).masked_fill(onehot, 0.0)


def verified_from_margins(margins: Tensor, y: Tensor) -> Tensor:
    """[B] bool: every margin lower bound m_j, j != y, is > 0."""
    onehot = F.one_hot(y, margins.shape[1]).bool()
    return margins.masked_fill(onehot, float("inf")).amin(1) > 0


def verified_mask(
    net: nn.Module, x: Tensor, y: Tensor, eps: float, *, net_name: str = "net"
) -> Tensor:
    """[B] bool: IBP proves every point of the eps-ball (∩ [0,1]) is classified y."""
    return verified_from_margins(margin_lower_bounds(net, x, y, eps, net_name=net_name), y)


# ---------------------------------------------------------------- folding for convex_adversarial
def _with_weights(layer: nn.Module, weight: Tensor, bias: Tensor | None) -> nn.Module:
    """`layer` (a fresh Linear/Conv2d template) with plain-tensor weight and bias.

    The tensors are functions of the original parameters, so a loss on the folded net
    back-propagates into the original net; convex_adversarial reads `.weight`/`.bias` directly.
    """
    del layer.weight, layer.bias
    layer.weight, layer.bias = weight, bias
    return layer


def _affine_1x1(scale: Tensor, shift: Tensor, ndim: int) -> nn.Module:
    """Per-channel y = scale * x + shift as a 1x1 Conv2d ([B,C,H,W]) or a Linear ([B,C])."""
    c = scale.numel()
    w = torch.diag_embed(scale)  # [C, C]
    if ndim == 4:
        conv = nn.Conv2d(c, c, 1, device="meta")
        return _with_weights(conv, w.view(c, c, 1, 1), shift)
    return _with_weights(nn.Linear(c, c, device="meta"), w, shift)


def _fold_into(layer: nn.Module, scale: Tensor, shift: Tensor) -> nn.Module:
    """layer(scale * x + shift) as one layer: W' = W diag(scale), b' = b + W shift."""
    w = layer.weight
    b = layer.bias if layer.bias is not None else w.new_zeros(w.shape[0])
    if isinstance(layer, nn.Conv2d):  # padding 0: every tap sees a real, shifted pixel
        w2 = w * scale.view(1, -1, 1, 1)
        b2 = b + (w * shift.view(1, -1, 1, 1)).sum((1, 2, 3))
        conv = nn.Conv2d(
            layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, device="meta"
        )
        return _with_weights(conv, w2, b2)
    # Linear after Flatten of [B, C, H, W]: feature index = c * H * W + hw (channel-major).
    n_out, n_in = w.shape
    wc = w.view(n_out, scale.numel(), -1)  # [out, C, HW]
    w2 = (wc * scale.view(1, -1, 1)).reshape(n_out, n_in)
    b2 = b + (wc * shift.view(1, -1, 1)).sum((1, 2))
    return _with_weights(nn.Linear(n_in, n_out, device="meta"), w2, b2)


def _dual_problem(layer: nn.Module) -> str | None:
    if isinstance(layer, (Normalize, nn.Linear, nn.ReLU, nn.Identity)):
        return None
    if isinstance(layer, nn.Flatten):
        return None if (layer.start_dim, layer.end_dim) == (1, -1) else "start_dim != 1"
    if isinstance(layer, nn.Conv2d):
        ok = layer.groups == 1 and layer.dilation == (1, 1) and layer.padding_mode == "zeros"
        ok = ok and not isinstance(layer.padding, str)
        return None if ok else "needs groups=1, dilation=1, numeric zero padding"
    if isinstance(layer, nn.Dropout):
        return None if not layer.training or layer.p == 0 else "Dropout in train mode"
    if isinstance(layer, _BN):
        return _ibp_problem(layer)
    return ""


def fold_normalize(net: nn.Module, *, net_name: str = "net") -> nn.Sequential:
    """An nn.Sequential of Linear/Conv2d/ReLU/Flatten computing exactly `net` (as it is now).

    Normalize and eval BatchNorm become a pending per-channel affine map folded into the next
    layer when that is exact (a Conv2d without padding, or Flatten + Linear), else emitted as a
    1x1 Conv2d (a padded conv would pad with 0 in normalised space, i.e. with m in pixels).
    Eval Dropout and Identity are dropped. Other layers are the original modules, shared, so
    gradients of a loss on the result reach `net`'s parameters. Cheap: call it every step.
    """
    layers = _supported_leaves(
        net,
        net_name,
        _dual_problem,
        "the dual bound (convex_adversarial) cannot take",
        DUAL_SUPPORTED,
    )
    if not isinstance(layers[-1][1], nn.Linear):
        raise ConfigError(f"the dual bound needs net {net_name} to end with a Linear layer")
    out: list[nn.Module] = []
    pending: tuple[Tensor, Tensor, int] | None = None  # scale [C], shift [C], ndim of input
    flat_after_pending = False

    def flush() -> None:
        nonlocal pending, flat_after_pending
        if pending is not None:
            mod = _affine_1x1(*pending)
            if flat_after_pending:  # the affine acts before the Flatten already emitted
                out.insert(len(out) - 1, mod)
            else:
                out.append(mod)
        pending, flat_after_pending = None, False

    for _, layer in layers:
        if isinstance(layer, (nn.Identity, nn.Dropout)):
            continue
        if isinstance(layer, (Normalize, *_BN)):
            flush()
            if isinstance(layer, Normalize):
                scale, shift = 1 / layer.std.flatten(), -layer.mean.flatten() / layer.std.flatten()
                ndim = 4
            else:
                scale = _bn_scale(layer, 2).flatten()
                bias = layer.bias if layer.bias is not None else torch.zeros_like(scale)
                shift = bias - layer.running_mean * scale
                ndim = 2 if isinstance(layer, nn.BatchNorm1d) else 4
            pending = (scale, shift, ndim)
            continue
        if pending is not None:
            if isinstance(layer, nn.Flatten) and pending[2] == 4 and not flat_after_pending:
                out.append(layer)
                flat_after_pending = True
                continue
            conv_ok = isinstance(layer, nn.Conv2d) and not flat_after_pending
            conv_ok = conv_ok and all(p == 0 for p in layer.padding)
            lin_ok = isinstance(layer, nn.Linear) and (flat_after_pending or pending[2] == 2)
            if conv_ok or lin_ok:
                out.append(_fold_into(layer, pending[0], pending[1]))
                pending, flat_after_pending = None, False
                continue
            flush()
        out.append(layer)
    flush()
    return nn.Sequential(*out)


# ---------------------------------------------------------------- convex_adversarial wrapper
@contextmanager
def _conv_shim() -> Iterator[None]:
    """Inside: convex_adversarial builds its conv duals with a size-exact transpose."""
    from convex_adversarial import dual_layers, dual_network

    class DualConv2dExact(dual_layers.DualConv2d):
        def __init__(self, layer: nn.Conv2d, in_f: torch.Size, out_f: torch.Size) -> None:
            super().__init__(layer, out_f)
            self.in_hw = tuple(in_f[-2:])

        def T(self, *xs: Tensor) -> Tensor | None:
            x = xs[-1]
            if x is None:
                return None
            n = x.size(0) if x.dim() == 5 else None
            x = x.reshape(-1, *x.shape[-3:])
            lay = self.layer
            full = [
                (o - 1) * s - 2 * p + k
                for o, s, p, k in zip(x.shape[-2:], lay.stride, lay.padding, lay.kernel_size)
            ]
            extra = tuple(i - f for i, f in zip(self.in_hw, full))  # in [0, stride)
            out = dual_layers.conv_transpose2d(
                x, lay.weight, stride=lay.stride, padding=lay.padding, output_padding=extra
            )
            return out if n is None else out.view(n, -1, *out.shape[1:])

    original = dual_network.select_layer

    def select_layer(layer, dual_net, X, proj, norm_type, in_f, out_f, zsi, zl=None, zu=None):
        if isinstance(layer, nn.Conv2d):
            return DualConv2dExact(layer, in_f, out_f)
        return original(layer, dual_net, X, proj, norm_type, in_f, out_f, zsi, zl=zl, zu=zu)

    dual_network.select_layer = select_layer
    try:
        yield
    finally:
        dual_network.select_layer = original


def dual_worst_case_logits(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    proj: int | None = None,
    norm_type: str = "l1",
    net_name: str = "net",
) -> Tensor:
    """Wong-Kolter dual bound over the eps-ball ∩ [0,1]: f [B,K], f_y = 0, f_j >= z_j - z_y.

    `proj=None, norm_type="l1"` is the exact dual (a sound bound, -f = margin lower bounds);
    `proj=k, norm_type="l1_median"` is the random-projection estimate used for training
    (not a bound). CE(f, y) is `convex_adversarial.robust_loss`'s loss. An input with
    <= proj features cannot be projected (the library raises): the exact bound is used.
    """
    from convex_adversarial import RobustBounds

    if proj is not None and x[0].numel() <= proj:
        proj, norm_type = None, "l1"
    folded = fold_normalize(net, net_name=net_name)
    with _conv_shim():
        return RobustBounds(folded, eps, proj=proj, norm_type=norm_type, bounded_input=True)(x, y)
