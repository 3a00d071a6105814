"""The placebo control (attacks/placebo.py) on the leaking fixture: the target leaks, the same
attacks against shadow model 0 (never trained on the evaluation members) sit at chance; a
deliberately wrong placebo (the target itself in shadow model 0's place) triggers the warning;
a shadow model that trained on evaluation members is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lit_mia.attacks import placebo
from lit_mia.attacks.context import ShadowModel
from lit_mia.attacks.registry import ATTACKS
from lit_mia.metrics import keys
from lit_mia.report_html import reading


def test_target_leaks_and_the_placebo_sits_at_chance(leaking_context):
    ctx = leaking_context
    target_auc = ATTACKS["ib"].run(ctx).metrics["auc"]
    got = placebo.placebo_keys(ctx, ["ib", "ia", "lira"])
    sh = ctx.shadow_models(1)[0]
    for role in ("members", "nonmembers"):  # the data split the placebo's claim rests on
        assert not np.intersect1d(sh.in_idx, ctx.eval_idx[role]).size
    assert target_auc > 0.6
    assert got[keys.placebo_fact("available")] == 1.0
    assert got[keys.placebo_fact("off_chance")] == 0.0
    for name in ("ib", "ia"):
        assert (
            got[keys.placebo(name, "auc_ci_low")] <= 0.5 <= got[keys.placebo(name, "auc_ci_high")]
        )
        assert abs(got[keys.placebo(name, "auc")] - 0.5) < 0.1
    assert keys.placebo("lira", "auc") not in got  # no scorer: no placebo, none claimed
    assert reading.placebo_warnings("t", got) == []


def test_a_placebo_that_saw_the_members_triggers_the_warning(leaking_context):
    wrong = dataclasses.replace(leaking_context, shared={}, _shadows=[])
    wrong.add_shadow(leaking_context.target)  # shadow 0's indices, but the target's weights
    got = placebo.placebo_keys(wrong, ["ib"])
    assert got[keys.placebo_fact("off_chance")] == 1.0
    assert got[keys.placebo("ib", "auc_ci_low")] > 0.5
    (line,) = reading.placebo_warnings("natural", got)
    assert line.startswith("WARNING natural: attack ib against the placebo")
    assert "not chance" in line


def test_a_shadow_model_trained_on_evaluation_members_is_refused(leaking_context):
    ctx = leaking_context
    sh = ctx.shadow_models(1)[0]
    seen = ShadowModel(sh.module, ctx.eval_idx["members"], sh.out_idx, sh.predictor)
    broken = dataclasses.replace(ctx, shared={}, _shadows=[seen])
    with pytest.raises(AssertionError, match="trained on 150 evaluation members"):
        placebo.placebo_model(broken)


def test_which_attacks_get_a_placebo_and_when_shadow_zero_is_trained_for_it(leaking_context):
    assert placebo.placebo_attacks(["ib", "lira", "ia", "a_li"]) == ["ib", "ia"]
    cfg, split = leaking_context.cfg, leaking_context.split
    assert placebo.placebo_shadows(cfg, split) == 1
    off = cfg.copy()
    off.attack.placebo = False
    assert placebo.placebo_shadows(off, split) == 0
    assert not placebo.wants_placebo(dataclasses.replace(leaking_context, cfg=off), ["ib"])
    small = dataclasses.replace(split, shadow=split.shadow[:10])
    assert placebo.placebo_shadows(cfg, small) == 0
