"""Label-only membership inference (Li & Zhang CCS'21): filled in by issue 5."""

from __future__ import annotations

from lit_mia.attacks.base import Attack

LABEL_ONLY_ATTACKS: dict[str, Attack] = {}
