"""Target architectures, built by name from the `NETS` registry via `build_net`.

Every net takes pixels in [0, 1] shaped [B, C, H, W] and returns raw logits [B, n_classes] (no
softmax). Its first module is `Normalize`, so epsilons, PGD steps and bounds stay in pixel space.
All nets except `wide_resnet` are one flat `nn.Sequential` of standard layers (Normalize, Conv2d,
ReLU/LeakyReLU, MaxPool2d, Flatten, Linear, Dropout), so interval bound propagation can walk them
layer by layer; `wide_resnet` is an `nn.Sequential` with named parts (norm, stem, group1..3, bn,
act, pool, flatten, fc) whose groups hold residual blocks.

Capacity knobs (the model-capacity study of Song et al., CCS'19, section 5.2.4):
- `width` scales every hidden channel count and hidden FC width, never the output layer:
  c -> max(1, round(c * width)). width=1 is the paper architecture. For `wide_resnet` the base
  group channels are (16, 32, 64), so `width` is the paper's capacity scale s: width=10 gives
  Madry et al.'s (160, 320, 640); the 16-channel stem conv is kept fixed, as in Madry's model.
- `depth` is the number of residual units per group for `wide_resnet` (default 5) and the number
  of hidden layers for `mlp` (default 2); the other nets have a fixed depth and reject it.
- `dropout` > 0 inserts nn.Dropout(p) before each hidden FC layer (in `wide_resnet`, which has no
  hidden FC layer, between the two convs of each residual block, as in Zagoruyko & Komodakis).
- `activation` is "relu" or "leaky_relu" (negative slope 0.1, as in Madry et al.'s WRN).

Other packages add nets by entry point (group `lit_mia.nets`, plugins.py): a builder with the
signature below; `accepts_depth = True` on it lets `net.depth` through.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from lit_mia import registry
from lit_mia.errors import ConfigError, unknown_name

Act = Callable[[], nn.Module]

ACTIVATIONS: dict[str, Act] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
}


class Normalize(nn.Module):
    """(x - mean) / std per channel; the first layer of every net. x: [B, C, H, W] in [0, 1]."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) == 0 or len(mean) != len(std):
            raise ConfigError(
                f"normalize mean and std need the same non-zero length, got {len(mean)} and "
                f"{len(std)}"
            )
        if any(not s > 0 for s in std):
            raise ConfigError(f"normalize std must be > 0, got {list(std)}")
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([float(s) for s in std]).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


# --------------------------------------------------------------------------- shared pieces


def _scale(c: int, width: float) -> int:
    return max(1, round(c * width))


def _fc_head(
    n_in: int, hidden: Sequence[int], n_classes: int, dropout: float, act: Act
) -> list[nn.Module]:
    """[Dropout] Linear act ... Linear(n_classes): hidden FC layers then the logits layer."""
    layers: list[nn.Module] = []
    for h in hidden:
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(n_in, h), act()]
        n_in = h
    layers.append(nn.Linear(n_in, n_classes))
    return layers


def _flat_size(name: str, in_shape: tuple[int, int, int], features: list[nn.Module]) -> int:
    """Number of features after the conv stack, from a dummy forward of one zero image."""
    stack = nn.Sequential(*features)

    def n_out(shape: tuple[int, int, int]) -> int:
        try:
            with torch.no_grad():
                return stack(torch.zeros(1, *shape)).numel()
        except RuntimeError:
            return 0

    n = n_out(in_shape)
    if n == 0:
        c, h, w = in_shape
        side = next((s for s in range(1, 1025) if n_out((c, s, s)) > 0), None)
        raise ConfigError(f"net {name} needs inputs of at least {side}x{side} (HxW), got {h}x{w}")
    return n


def _conv_block(c_in: int, c_out: int, strides: Sequence[int], act: Act) -> list[nn.Module]:
    """conv3x3 (padding 1) + act per stride; spatial size shrinks by prod(strides)."""
    layers: list[nn.Module] = []
    for s in strides:
        layers += [nn.Conv2d(c_in, c_out, 3, stride=s, padding=1), act()]
        c_in = c_out
    return layers


# --------------------------------------------------------------------------- builders
# Signature: (name, in_shape, n_classes, norm, width, depth, dropout, act) -> nn.Module, with
# arguments already validated by build_net; call build_net rather than these directly.


def lenet_mnist(
    name: str, in_shape: tuple[int, int, int], n_classes: int, norm: Normalize,
    width: float, depth: int | None, dropout: float, act: Act,
) -> nn.Module:  # fmt: skip
    """MNIST LeNet of Updates-Leak (Salem et al., USENIX Security'20, appendix A).

    [B,1,28,28] -conv5(10)-> [B,10,24,24] -max2-> [B,10,12,12] -conv5(20)-> [B,20,8,8]
    -max2-> [B,20,4,4] -flatten-> [B,320] -FC50-> [B,50] -FC-> [B,n_classes].
    Needs inputs of at least 16x16.
    """
    c1, c2, f1 = _scale(10, width), _scale(20, width), _scale(50, width)
    features = [
        nn.Conv2d(in_shape[0], c1, 5), act(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5), act(), nn.MaxPool2d(2),
    ]  # fmt: skip
    n_flat = _flat_size(name, in_shape, features)
    head = _fc_head(n_flat, [f1], n_classes, dropout, act)
    return nn.Sequential(norm, *features, nn.Flatten(), *head)


def lenet_cifar(
    name: str, in_shape: tuple[int, int, int], n_classes: int, norm: Normalize,
    width: float, depth: int | None, dropout: float, act: Act,
) -> nn.Module:  # fmt: skip
    """CIFAR-10 LeNet of Updates-Leak (Salem et al., USENIX Security'20, appendix A).

    [B,3,32,32] -conv5(6)-> [B,6,28,28] -max2-> [B,6,14,14] -conv5(16)-> [B,16,10,10]
    -max2-> [B,16,5,5] -flatten-> [B,400] -FC120-> -FC84-> -FC-> [B,n_classes].
    Needs inputs of at least 16x16.
    """
    c1, c2 = _scale(6, width), _scale(16, width)
    features = [
        nn.Conv2d(in_shape[0], c1, 5), act(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5), act(), nn.MaxPool2d(2),
    ]  # fmt: skip
    n_flat = _flat_size(name, in_shape, features)
    head = _fc_head(n_flat, [_scale(120, width), _scale(84, width)], n_classes, dropout, act)
    return nn.Sequential(norm, *features, nn.Flatten(), *head)


def fmnist_cnn(
    name: str, in_shape: tuple[int, int, int], n_classes: int, norm: Normalize,
    width: float, depth: int | None, dropout: float, act: Act,
) -> nn.Module:  # fmt: skip
    """Fashion-MNIST CNN of Song et al., "Privacy risks of securing ML models against
    adversarial examples" (CCS'19), section 4 / appendix B.

    2 blocks of channels (256, 512), each 3 conv3x3 (padding 1) with strides 1, 1, 2:
    [B,1,28,28] -> [B,256,14,14] -> [B,512,7,7] -flatten-> [B,25088] -FC200-> -FC-> [B,n].
    """
    features: list[nn.Module] = []
    c_in = in_shape[0]
    for c in (256, 512):
        features += _conv_block(c_in, _scale(c, width), (1, 1, 2), act)
        c_in = _scale(c, width)
    n_flat = _flat_size(name, in_shape, features)
    head = _fc_head(n_flat, [_scale(200, width)], n_classes, dropout, act)
    return nn.Sequential(norm, *features, nn.Flatten(), *head)


def yale_cnn(
    name: str, in_shape: tuple[int, int, int], n_classes: int, norm: Normalize,
    width: float, depth: int | None, dropout: float, act: Act,
) -> nn.Module:  # fmt: skip
    """Yale Face CNN of Song et al., "Privacy risks of securing ML models against adversarial
    examples" (CCS'19), section 4 / appendix B (n_classes=38 there).

    4 blocks of channels (8, 16, 32, 64), each 2 conv3x3 (padding 1) with strides 1, 2:
    [B,1,168,192] -> [B,8,84,96] -> [B,16,42,48] -> [B,32,21,24] -> [B,64,11,12]
    -flatten-> [B,8448] -FC200-> -FC-> [B,n_classes].
    """
    features: list[nn.Module] = []
    c_in = in_shape[0]
    for c in (8, 16, 32, 64):
        features += _conv_block(c_in, _scale(c, width), (1, 2), act)
        c_in = _scale(c, width)
    n_flat = _flat_size(name, in_shape, features)
    head = _fc_head(n_flat, [_scale(200, width)], n_classes, dropout, act)
    return nn.Sequential(norm, *features, nn.Flatten(), *head)


def mlp(
    name: str, in_shape: tuple[int, int, int], n_classes: int, norm: Normalize,
    width: float, depth: int | None, dropout: float, act: Act,
) -> nn.Module:  # fmt: skip
    """Fully connected baseline: [B,C,H,W] -flatten-> [B,C*H*W] -FC256-> -FC256-> -FC-> [B,n].

    `depth` hidden layers of 256*width units (default 2); any input size works.
    """
    c, h, w = in_shape
    hidden = [_scale(256, width)] * (2 if depth is None else depth)
    return nn.Sequential(norm, nn.Flatten(), *_fc_head(c * h * w, hidden, n_classes, dropout, act))


class PreActBlock(nn.Module):
    """Pre-activation basic residual unit (He et al. 2016; Zagoruyko & Komodakis 2016).

    out = conv3x3(drop(act(bn(conv3x3_stride(act(bn(x))))))) + shortcut, where shortcut is x when
    shape is kept and a 1x1 strided conv of act(bn(x)) otherwise. [B,c_in,H,W] -> [B,c_out,H/s,W/s].
    """

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float, act: Act) -> None:
        super().__init__()
        self.bn1, self.act1 = nn.BatchNorm2d(c_in), act()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2, self.act2 = nn.BatchNorm2d(c_out), act()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.act1(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(o)
        o = self.conv2(self.drop(self.act2(self.bn2(self.conv1(o)))))
        return o + skip


def wide_resnet(
    name: str, in_shape: tuple[int, int, int], n_classes: int, norm: Normalize,
    width: float, depth: int | None, dropout: float, act: Act,
) -> nn.Module:  # fmt: skip
    """Wide ResNet (Zagoruyko & Komodakis 2016) as used by Madry et al. (ICLR'18) for CIFAR-10
    and by Song et al. (CCS'19, section 4 and the capacity study of section 5.2.4).

    stem conv3x3(16) then 3 groups of `depth` (default 5) pre-activation units with channels
    (16s, 32s, 64s), s = width, strides 1, 2, 2; then BN, act, global average pool, FC:
    [B,3,32,32] -> [B,16,32,32] -> [B,16s,32,32] -> [B,32s,16,16] -> [B,64s,8,8]
    -pool-> [B,64s] -FC-> [B,n_classes]. width=10, depth=5 is Madry's model (160, 320, 640).
    Any input size works (padded convs keep >= 1x1).
    """
    n_units = 5 if depth is None else depth
    parts: OrderedDict[str, nn.Module] = OrderedDict(norm=norm)
    parts["stem"] = nn.Conv2d(in_shape[0], 16, 3, padding=1, bias=False)
    c_in = 16
    for i, (c, stride) in enumerate(zip((16, 32, 64), (1, 2, 2)), start=1):
        c_out = _scale(c, width)
        units = [PreActBlock(c_in, c_out, stride, dropout, act)]
        units += [PreActBlock(c_out, c_out, 1, dropout, act) for _ in range(n_units - 1)]
        parts[f"group{i}"] = nn.Sequential(*units)
        c_in = c_out
    parts["bn"] = nn.BatchNorm2d(c_in)
    parts["act"] = act()
    parts["pool"] = nn.AdaptiveAvgPool2d(1)
    parts["flatten"] = nn.Flatten()
    parts["fc"] = nn.Linear(c_in, n_classes)
    return nn.Sequential(parts)


NETS = registry.NETS  # name -> the builder above, or a plug-in's (lit_mia/registry.py)

_DEPTH_NETS = ("mlp", "wide_resnet")  # and every plug-in builder with `accepts_depth = True`


def _takes_depth(name: str) -> bool:
    return name in _DEPTH_NETS or bool(getattr(NETS[name], "accepts_depth", False))


def build_net(
    name: str,
    in_shape: tuple[int, int, int],
    n_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    width: float = 1.0,
    depth: int | None = None,
    dropout: float = 0.0,
    activation: str = "relu",
) -> nn.Module:
    """Build net `name` for inputs [B, *in_shape] in [0, 1]; returns logits [B, n_classes].

    Raises ConfigError (one line, naming the key) for an unknown name or activation, width <= 0,
    depth <= 0 or set for a fixed-depth net, dropout outside [0, 1), mean/std not matching the
    channels, or an input too small for the net.
    """
    if name not in NETS:
        raise unknown_name("net", name, NETS)
    if activation not in ACTIVATIONS:
        raise unknown_name("net.activation", activation, ACTIVATIONS)
    if (
        len(in_shape) != 3
        or any(isinstance(d, bool) or not isinstance(d, int) for d in in_shape)
        or min(in_shape) < 1
    ):
        raise ConfigError(f"net in_shape must be 3 positive ints (C, H, W), got {in_shape}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
        raise ConfigError(f"net n_classes must be an int >= 1, got {n_classes}")
    if not width > 0:
        raise ConfigError(f"net.width must be > 0, got {width}")
    if depth is not None:
        if not _takes_depth(name):
            takers = ", ".join(n for n in NETS if _takes_depth(n))
            raise ConfigError(
                f"net.depth is not used by net {name} (only by {takers}); "
                f"leave it null, got {depth}"
            )
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ConfigError(f"net.depth must be an int > 0, got {depth}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"net.dropout must be in [0, 1), got {dropout}")
    if len(mean) != in_shape[0] or len(std) != in_shape[0]:
        raise ConfigError(
            f"normalize mean/std need one value per input channel ({in_shape[0]}), got "
            f"{len(mean)} and {len(std)}"
        )
    norm = Normalize(mean, std)
    act = ACTIVATIONS[activation]
    return NETS[name](name, tuple(in_shape), n_classes, norm, width, depth, dropout, act)
