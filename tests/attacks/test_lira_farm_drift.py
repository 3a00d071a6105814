"""LiRA's shadow farm cannot drift from the target (renovation issue, item 4).

For every registered regime and every knob of its settings (countermeasures included), a
non-default value must either change the farm's TrainSpec (the farm reproduces it), be a
prediction-time knob the attack applies to the shadows too (temperature), or send the shadows
through the Lightning fit (`farm_spec` is None). A new knob added to a regime's settings is
covered automatically; a farm that ignored it would fail here.
"""

from __future__ import annotations

import copy
import dataclasses
from functools import cache

import pytest

from lit_mia import config
from lit_mia.attacks.lira import PREDICTION_ONLY, farm_spec
from lit_mia.targets import TARGETS

TINY = ["trainer.max_epochs=20"]


def _other(value):
    """A valid-looking value different from `value`."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.5 if value else 0.01
    if value is None:
        return 3
    return {"adam": "sgd", "fixed": "batch", "l1_median": "l1"}.get(value, value + "_x")


CASES = [
    (regime, f.name)
    for regime, cls in TARGETS.items()
    for f in dataclasses.fields(cls.Settings)
    if f.name != "name"
]


@cache
def _loaded(regime: str):
    """The regime's resolved `lira` config, loaded once per regime (not once per knob)."""
    return config.load("lira", [*TINY, f"target.name={regime}"])


@pytest.mark.parametrize(("regime", "knob"), CASES)
def test_every_knob_is_reproduced_or_refused(regime, knob):
    base = copy.deepcopy(_loaded(regime))
    value = _other(getattr(TARGETS[regime].Settings(), knob))
    changed = copy.deepcopy(base)
    changed.target[knob] = value
    before, after = farm_spec(base, 5), farm_spec(changed, 5)
    if after is None or knob in PREDICTION_ONLY:
        return
    assert before is not None
    regime_changes_training = (
        knob in ("optimizer", "lr", "weight_decay")
        or (regime == "pgd" and knob in ("eps", "steps", "step_size", "random_start"))
        or (knob == "momentum" and changed.target.optimizer == "sgd")
    )
    if regime_changes_training:
        assert after.fields() != before.fields(), f"{regime}: farm ignores target.{knob}"


def test_farm_covers_natural_and_pgd_and_refuses_others():
    assert farm_spec(config.load("lira", TINY), 5) is not None
    assert farm_spec(config.load("lira", [*TINY, "target.name=pgd"]), 5).adversarial
    for regime in set(TARGETS) - {"natural", "pgd"}:
        assert farm_spec(config.load("lira", [*TINY, f"target.name={regime}"]), 5) is None
    aug = config.load("lira", [*TINY, "data.augment=flip_shift"])
    assert farm_spec(aug, 5) is None
