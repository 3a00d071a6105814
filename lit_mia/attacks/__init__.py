"""Attacks by name (the `attacks` list); each entry is a `base.Attack`.

Families, each registering its own names:
- score-based thresholds (threshold.py): ib, ia, iv, ia_sweep
- inference classifiers (infer.py, shadow.py): model_infer, confidence_infer, shadow
- LiRA (lira.py): lira
- label-only (label_only/): baseline, transfer, boundary, augmentation
- update leakage (lit_mia/updates_leak/, its own pipeline): a_li, a_ssr, a_lde, a_msr

Adding an attack: its module, one registry line in its family, conf/attack/<name>.yaml, a test.
"""

from __future__ import annotations

from lit_mia.attacks.base import Attack, AttackResult
from lit_mia.attacks.infer import INFER_ATTACKS
from lit_mia.attacks.label_only import LABEL_ONLY_ATTACKS
from lit_mia.attacks.lira import LIRA_ATTACKS
from lit_mia.attacks.threshold import THRESHOLD_ATTACKS
from lit_mia.attacks.updates import UPDATE_ATTACKS

ATTACKS: dict[str, Attack] = {
    **THRESHOLD_ATTACKS,
    **INFER_ATTACKS,
    **LIRA_ATTACKS,
    **LABEL_ONLY_ATTACKS,
}
"""Membership attacks: run per target by run.py on an AttackContext."""

ALL_ATTACKS: dict[str, Attack] = {**ATTACKS, **UPDATE_ATTACKS}

__all__ = ["ATTACKS", "ALL_ATTACKS", "UPDATE_ATTACKS", "Attack", "AttackResult"]
