"""LiRA (Carlini et al. S&P 2022): filled in by issue 4."""

from __future__ import annotations

from lit_mia.attacks.base import Attack

LIRA_ATTACKS: dict[str, Attack] = {}
