"""The encoder shared by every Updates-Leak attack (Salem et al. USENIX Security'20, §3.2,
appendix B): features -> FC 128 -> FC 64 = mu, LeakyReLU and dropout on both layers.

Its input is the representation of the posterior difference (representation.py: by default
the unit-length log-posterior difference plus its standardised log-norm), already scaled, so
the encoder applies no statistics of its own. `hidden` and `dropout` are configurable (A_LDE's
released MLP uses 256-128).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class Encoder(nn.Module):
    """[B, d_in] -> [B, hidden[-1]] (mu)."""

    def __init__(self, d_in: int, hidden: Sequence[int] = (128, 64), dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n = d_in
        for h in hidden:
            layers += [nn.Linear(n, int(h)), nn.LeakyReLU(), nn.Dropout(dropout)]
            n = int(h)
        self.net = nn.Sequential(*layers)
        self.out_dim = n

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


__all__ = ["Encoder"]
