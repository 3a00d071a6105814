"""Deterministic image transforms shared by the attacks that query shifted copies of an input
(LiRA's augmentation queries, the label-only augmentation attack). Shapes: x [N, C, H, W]."""

from __future__ import annotations

import torch
from torch import Tensor


def translate(x: Tensor, di: int, dj: int) -> Tensor:
    """x [N, C, H, W] moved by di rows and dj columns, zero fill."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    src_r = slice(max(0, -di), min(h, h - di))
    dst_r = slice(max(0, di), min(h, h + di))
    src_c = slice(max(0, -dj), min(w, w - dj))
    dst_c = slice(max(0, dj), min(w, w + dj))
    out[..., dst_r, dst_c] = x[..., src_r, src_c]
    return out


__all__ = ["translate"]
