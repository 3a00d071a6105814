"""Inference-classifier attacks (CCS'19 Table 7; Shokri 2017 / ML-Leaks): filled in by issue 4."""

from __future__ import annotations

from lit_mia.attacks.base import Attack

INFER_ATTACKS: dict[str, Attack] = {}
