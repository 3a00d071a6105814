"""`tiny_mlp`: a net plug-in with the builder signature of lit_mia.nets.build_net.

build_net validates the common arguments (width, dropout, activation, in_shape, mean/std) and
passes `norm`, the Normalize layer built from the data set's statistics, which must be the
first layer (inputs stay in [0, 1] pixel space). [B,C,H,W] -flatten-> [B,C*H*W] -FC(64*width)->
... (`depth` hidden layers, default 1) -FC-> [B, n_classes] logits.
"""

from __future__ import annotations

from torch import nn


def tiny_mlp(name, in_shape, n_classes, norm, width, depth, dropout, act) -> nn.Module:
    c, h, w = in_shape
    hidden = max(1, round(64 * width))
    layers: list[nn.Module] = [norm, nn.Flatten()]
    n_in = c * h * w
    for _ in range(1 if depth is None else depth):
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(n_in, hidden), act()]
        n_in = hidden
    layers.append(nn.Linear(n_in, n_classes))
    return nn.Sequential(*layers)


tiny_mlp.accepts_depth = True  # lit_mia lets net.depth through for this net
