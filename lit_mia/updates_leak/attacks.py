"""Registry entries of the update-leakage attacks (Salem et al. USENIX Security'20), collected
into the one attack registry by lit_mia/attacks/registry.py.

Each entry's `run(ctx)` takes the `UpdatesContext` of updates_leak/pipeline.py (the updated-model
farms, context.py) and returns an `AttackResult`; `check(cfg)` refuses bad settings before
anything trains (validation.py); the `updates` config section is `UpdatesSettings`.
"""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from lit_mia.attacks.base import UPDATE_LEAKAGE, Attack, AttackResult
from lit_mia.updates_leak.context import UpdatesContext
from lit_mia.updates_leak.multi import run_a_lde, run_a_msr
from lit_mia.updates_leak.settings import UpdatesSettings
from lit_mia.updates_leak.single import run_a_li, run_a_ssr
from lit_mia.updates_leak.validation import check_updates


def _check(name: str) -> Callable[[DictConfig], None]:
    def check(cfg: DictConfig) -> None:
        check_updates(cfg, name)

    return check


def _entry(name: str, run: Callable[[UpdatesContext], AttackResult], description: str) -> Attack:
    return Attack(
        name,
        run=run,
        check=_check(name),
        description=description,
        kind=UPDATE_LEAKAGE,
        settings={"updates": UpdatesSettings},
    )


UPDATE_ATTACKS: dict[str, Attack] = {
    "a_li": _entry(
        "a_li", run_a_li, "single-sample label inference from posterior differences (§4.1)"
    ),
    "a_ssr": _entry("a_ssr", run_a_ssr, "single-sample reconstruction, AE decoder transfer (§4.2)"),
    "a_lde": _entry(
        "a_lde", run_a_lde, "label distribution estimation of k-sample update sets (§5)"
    ),
    "a_msr": _entry(
        "a_msr", run_a_msr, "multi-sample reconstruction with CBM-GAN (§5, appendix E)"
    ),
}

__all__ = ["UPDATE_ATTACKS"]
