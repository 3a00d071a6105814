"""Registry entries of the update-leakage attacks (pipeline in lit_mia/updates_leak/)."""

from __future__ import annotations

from lit_mia.attacks.base import Attack

UPDATE_ATTACKS: dict[str, Attack] = {}
