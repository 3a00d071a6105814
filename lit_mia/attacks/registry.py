"""Every attack by name, whatever its kind (the `attacks` list of an experiment).

Families, each registering its own names and settings:
- score-based thresholds (threshold.py): ib, ia, iv, ia_sweep                  membership
- inference classifiers (infer.py, shadow.py): model_infer, confidence_infer, shadow
- LiRA (lira.py): lira; RMIA (rmia.py): rmia; reference-budget curve (ref_budget.py)
- DP-SGD audit with canaries (dp_audit.py): dp_audit
- label-only (label_only/): baseline, transfer, boundary, augmentation, cert_radius  label_only
- update leakage (lit_mia/updates_leak/attacks.py): a_li, a_ssr, a_lde, a_msr  update_leakage

Adding an attack: its module (run function, settings dataclass, check), one line in its
family's dict, its test; conf/attack/<name>.yaml only if an experiment should select it by
`attack=<name>` with values other than the defaults. Other packages add attacks by entry
point (group `lit_mia.attacks`, plugins.py).
"""

from __future__ import annotations

from lit_mia import plugins
from lit_mia.attacks.base import KINDS, Attack
from lit_mia.attacks.dp_audit import DP_AUDIT_ATTACKS
from lit_mia.attacks.infer import INFER_ATTACKS
from lit_mia.attacks.label_only import LABEL_ONLY_ATTACKS
from lit_mia.attacks.lira import LIRA_ATTACKS
from lit_mia.attacks.ref_budget import REF_BUDGET_ATTACKS
from lit_mia.attacks.rmia import RMIA_ATTACKS
from lit_mia.attacks.threshold import THRESHOLD_ATTACKS
from lit_mia.updates_leak.attacks import UPDATE_ATTACKS

ATTACKS: dict[str, Attack] = {
    **THRESHOLD_ATTACKS,
    **INFER_ATTACKS,
    **LIRA_ATTACKS,
    **RMIA_ATTACKS,
    **REF_BUDGET_ATTACKS,
    **DP_AUDIT_ATTACKS,
    **LABEL_ONLY_ATTACKS,
    **UPDATE_ATTACKS,
}
ATTACKS = plugins.merged(  # entry points of group lit_mia.attacks (plugins.py)
    "attacks",
    ATTACKS,
    lambda n, a: (
        None
        if isinstance(a, Attack) and a.name == n
        else f"must be an Attack (attacks/base.py) named {n!r}, got {a!r}"[:200]
    ),
)


def of_kind(*kinds: str) -> dict[str, Attack]:
    """The registered attacks of the given kinds (attacks/base.py KINDS)."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown attack kinds {unknown}; valid: {', '.join(KINDS)}")
    return {n: a for n, a in ATTACKS.items() if a.kind in kinds}


def settings_sections() -> dict[str, type]:
    """Config section -> settings dataclass over every registered attack (one class a key)."""
    out: dict[str, type] = {}
    for a in ATTACKS.values():
        for key, cls in a.settings.items():
            if out.setdefault(key, cls) is not cls:
                raise TypeError(f"attack {a.name}: section {key} already has {out[key]}")
    return out


__all__ = ["ATTACKS", "of_kind", "settings_sections"]
