"""Registry entries of the update-leakage attacks (Salem et al. USENIX Security'20).

Their pipeline lives in lit_mia/updates_leak/ (run.run_experiment dispatches there when every
listed attack is one of these), so `run` is never called per target; `check(cfg)` refuses bad
settings before anything trains (lit_mia/updates_leak/validation.py).
"""

from __future__ import annotations

from functools import partial

from lit_mia.attacks.base import Attack, AttackResult
from lit_mia.updates_leak.validation import check_updates


def _not_per_target(name: str, ctx) -> AttackResult:
    raise RuntimeError(
        f"{name} is an update-leakage attack: it runs in lit_mia.updates_leak.pipeline "
        "(run_experiment dispatches there), not per membership target"
    )


def _entry(name: str, description: str) -> Attack:
    return Attack(
        name,
        run=partial(_not_per_target, name),
        check=partial(lambda n, cfg: check_updates(cfg, n), name),
        description=description,
    )


UPDATE_ATTACKS: dict[str, Attack] = {
    "a_li": _entry("a_li", "single-sample label inference from posterior differences (§4.1)"),
    "a_ssr": _entry("a_ssr", "single-sample reconstruction, AE decoder transfer (§4.2)"),
    "a_lde": _entry("a_lde", "label distribution estimation of k-sample update sets (§5)"),
    "a_msr": _entry("a_msr", "multi-sample reconstruction with CBM-GAN (§5, appendix E)"),
}
