"""Every attack by name, whatever its kind (the `attacks` list of an experiment).

The table below is the whole registry: each entry names its kind, description, the settings
sections it reads (dataclasses in attacks/settings.py, label_only/settings.py and
attacks/update_leakage/settings.py) and, as lazy `module:function` references (lit_mia/registry.py),
the code that runs it, its config check and how many shadow models it needs. Nothing here
imports torch: `lit-mia list` and the config's name and key checks read the table, and an
attack's module is imported when the attack runs or its check is called.

Families:
- score-based thresholds (confidence.py): ib, ia, iv, ia_sweep                  membership
- inference classifiers (infer.py, shadow.py): model_infer, confidence_infer, shadow
- LiRA (lira.py): lira; RMIA (rmia.py): rmia; reference-budget curve (ref_budget.py)
- DP-SGD audit with canaries (dp_audit.py): dp_audit
- label-only (label_only/): baseline, transfer, boundary, augmentation, cert_radius  label_only
- update leakage (update_leakage/): a_li, a_ssr, a_lde, a_msr                  update_leakage

A score attack gives `scorer` (scores, losses of the evaluation sets from a Predictor) instead
of `run`, and gets the shared metric set and calibration of attacks/scoring.py.

Adding an attack: its module (run function or scorer, check), its settings dataclass in the
family's settings module, one entry here, its test; conf/attack/<name>.yaml only if an
experiment should select it by `attack=<name>` with values other than the defaults. Other
packages add attacks by entry point (group `lit_mia.attacks`, plugins.py).
"""

from __future__ import annotations

from functools import partial

from lit_mia.attacks import settings as s
from lit_mia.attacks.base import KINDS, LABEL_ONLY, UPDATE_LEAKAGE, Attack
from lit_mia.attacks.label_only import settings as lo
from lit_mia.attacks.update_leakage.settings import UpdatesSettings
from lit_mia.registry import LazyCallable, Registry

_T = "lit_mia.attacks.confidence"
_LO = "lit_mia.attacks.label_only"
_UL = "lit_mia.attacks.update_leakage"


def shadow_models(cfg) -> int:
    """The shadow attack trains `attack.shadow.n_models` shadow models like the target."""
    return int(cfg.attack.shadow.n_models)


def _updates(name: str, run: str, description: str) -> Attack:
    check = partial(LazyCallable(f"{_UL}.validation:check_updates"), attack=name)
    return Attack(
        name, run, check, description, kind=UPDATE_LEAKAGE, settings={"updates": UpdatesSettings}
    )


_BUILTINS = (
    Attack("ib", scorer=f"{_T}:benign_confidence", description="I_B: benign confidence F(x)_y"),
    Attack(
        "ia",
        scorer=f"{_T}:adversarial_confidence",
        description="I_A: confidence on untargeted PGD examples",
    ),
    Attack(
        "iv",
        scorer=f"{_T}:verified_confidence",
        check=f"{_T}:check_verifier",
        description="I_V: verified worst-case confidence under the target's verifier",
    ),
    Attack(
        "ia_sweep",
        f"{_T}:ia_sweep",
        f"{_T}:check_sweep",
        "I_A at a list of attack eps (CCS'19 Fig. 5)",
        shadows="lit_mia.attacks.scoring:calibration_shadows",
    ),
    Attack(
        "model_infer",
        "lit_mia.attacks.infer:model_infer",
        "lit_mia.attacks.infer:check_infer_settings",
        "CCS'19 model-infer: per-class MLP on benign/untargeted/targeted prediction vectors",
        settings={"attack.infer": s.InferSettings},
    ),
    Attack(
        "confidence_infer",
        "lit_mia.attacks.infer:confidence_infer",
        "lit_mia.attacks.infer:check_confidence_infer",
        "CCS'19 confidence-infer: per-class thresholds on F(x)_y / F(x_adv)_y",
        settings={"attack.infer": s.InferSettings},
    ),
    Attack(
        "shadow",
        "lit_mia.attacks.shadow:shadow_attack",
        "lit_mia.attacks.shadow:check_shadow_settings",
        "Shokri/ML-Leaks: attack MLP on shadow models' sorted or label-conditioned predictions",
        shadows=shadow_models,
        settings={"attack.shadow": s.ShadowAttackSettings},
    ),
    Attack(
        "lira",
        "lit_mia.attacks.lira:run_lira",
        "lit_mia.attacks.lira:check_lira",
        "LiRA (Carlini et al. 2022): per-example Gaussian likelihood ratio of phi",
        settings={"attack.lira": s.LiraSettings},
    ),
    Attack(
        "rmia",
        "lit_mia.attacks.rmia:run_rmia",
        "lit_mia.attacks.rmia:check_rmia",
        "RMIA (Zarifzadeh et al. 2024): pairwise likelihood ratio against population samples",
        settings={"attack.rmia": s.RmiaSettings},
    ),
    Attack(
        "ref_budget",
        "lit_mia.attacks.ref_budget:run_ref_budget",
        "lit_mia.attacks.ref_budget:check_ref_budget",
        "RMIA vs LiRA (online/offline) AUC and TPR at low FPR by number of reference models",
        settings={"attack.ref_budget": s.RefBudgetSettings},
    ),
    Attack(
        "dp_audit",
        "lit_mia.attacks.dp_audit:run_dp_audit",
        "lit_mia.attacks.dp_audit:check_dp_audit",
        "DP-SGD audit: canaries in one training run, Clopper-Pearson and one-run ε lower bounds",
        settings={"attack.dp_audit": s.DpAuditSettings},
    ),
    Attack(
        "baseline",
        scorer=f"{_LO}.baseline:correct_scores",
        description="Yeom baseline: member iff correctly classified",
        kind=LABEL_ONLY,
    ),
    Attack(
        "transfer",
        f"{_LO}.transfer:run",
        f"{_LO}.transfer:check",
        "transfer attack: shadow model on target-relabelled data, score -CE",
        kind=LABEL_ONLY,
        settings={"attack.transfer": lo.TransferSettings},
    ),
    Attack(
        "boundary",
        f"{_LO}.boundary:run",
        f"{_LO}.boundary:check",
        "boundary attack: HopSkipJump perturbation norm from label queries",
        kind=LABEL_ONLY,
        settings={
            "attack.boundary": lo.BoundarySettings,
            "attack.thresholds": lo.ThresholdSettings,
        },
    ),
    Attack(
        "augmentation",
        scorer=f"{_LO}.augmentation:augmentation_scorer",
        check=f"{_LO}.augmentation:check",
        description="Choquette-Choo label robustness to shifts / flips / noise",
        kind=LABEL_ONLY,
        settings={"attack.augmentation": lo.AugmentationSettings},
    ),
    Attack(
        "cert_radius",
        f"{_LO}.certify:run",
        f"{_LO}.certify:check",
        "randomized-smoothing certified radius (ACR members vs non-members)",
        kind=LABEL_ONLY,
        settings={"attack.cert": lo.CertSettings},
    ),
    _updates(
        "a_li",
        f"{_UL}.single:run_a_li",
        "single-sample label inference from posterior differences (§4.1)",
    ),
    _updates(
        "a_ssr",
        f"{_UL}.single:run_a_ssr",
        "single-sample reconstruction, AE decoder transfer (§4.2)",
    ),
    _updates(
        "a_lde",
        f"{_UL}.multi:run_a_lde",
        "label distribution estimation of k-sample update sets (§5)",
    ),
    _updates(
        "a_msr",
        f"{_UL}.multi:run_a_msr",
        "multi-sample reconstruction with CBM-GAN (§5, appendix E)",
    ),
)


def _check_plugin(name: str, a: object) -> str | None:
    if isinstance(a, Attack) and a.name == name:
        return None
    return f"must be an Attack (attacks/base.py) named {name!r}, got {a!r}"[:200]


ATTACKS = Registry("attacks", {a.name: a for a in _BUILTINS}, _check_plugin)
"""Attack name -> its `Attack` entry; plug-ins (entry points of group lit_mia.attacks) are
imported when first used, or all at once by `settings_sections`."""


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


__all__ = ["ATTACKS", "of_kind", "settings_sections", "shadow_models"]
