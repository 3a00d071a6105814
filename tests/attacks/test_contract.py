"""Measurement integrity (issue 12) on the contract fixtures of tests/attacks/conftest.py:
the fixtures are what they claim, every registered attack has an `AttackTester` contract test
(tests/helpers/attack_tester.py: beats its strongest trivial baseline on the leaking fixture,
at chance without signal, well-formed keys), and calibrated numbers see shadow data only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from lit_mia.attacks.confidence import choose_eps
from lit_mia.attacks.context import AttackContext, shadow_split
from tests.attacks.conftest import CONTRACT

TESTS = Path(__file__).resolve().parents[1]


def _contracts() -> dict[str, str]:
    """{attack name: test file} of every AttackTester subclass under tests/ (read from the
    source, so a file that is not imported still counts)."""
    found: dict[str, str] = {}
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            if not any(getattr(b, "id", "").endswith("Tester") for b in node.bases):
                continue  # AttackTester or a family's subclass of it (UpdatesTester)
            for stmt in node.body:
                if not isinstance(stmt, ast.Assign):
                    continue
                target, value = stmt.targets[0], stmt.value  # attack = ... / attack, k = ...
                pairs = (
                    zip(target.elts, value.elts)
                    if isinstance(target, ast.Tuple)
                    else [(target, value)]
                )
                for t, v in pairs:
                    if getattr(t, "id", None) == "attack":
                        found[v.value] = str(path.relative_to(TESTS))
    return found


def test_every_registered_attack_has_a_contract_test():
    """Every attack of the registry (built-ins; plug-ins bring their own tests) is checked by
    an AttackTester subclass, in the test file mirroring its module."""
    from lit_mia.attacks.registry import ATTACKS

    found = _contracts()
    builtin = [n for n in ATTACKS if not ATTACKS.is_plugin(n)]
    assert sorted(set(builtin) - set(found)) == []
    assert sorted(set(found) - set(builtin)) == []


def test_fixtures_are_what_they_claim(leaking_context, no_signal_context):
    p = leaking_context.pred
    assert p.accuracy("members") == 1.0
    assert p.accuracy("nonmembers") < 0.9
    q = no_signal_context.pred  # both sets unseen: the same accuracy up to sampling noise
    assert abs(q.accuracy("members") - q.accuracy("nonmembers")) < 0.15


# ---------------------------------------------------------------- defects of issue 12


def test_calibration_shadow_trains_on_as_many_points_as_the_target(leaking_context):
    """Defect 2: shadow model 0 used to train on n_shadow / 2 = 200 points for a 150-member
    target; it trains on exactly n_members points from the shadow pool."""
    split = leaking_context.split
    for i in range(3):
        s_in, s_out = shadow_split(split, i)
        assert len(s_in) == len(split.members) == 150
        assert len(s_out) == 150
        assert not set(s_in) & set(s_out)
        assert set(s_in) | set(s_out) <= set(split.shadow)
    sh = leaking_context.shadow_models(1)[0]
    assert len(sh.in_idx) == 150
    assert sh.predictor.accuracy("members") == 1.0  # overfits like the target does


def test_too_small_shadow_pool_is_refused(tmp_path):
    from lit_mia.errors import ConfigError
    from lit_mia.run import run_experiment

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(ConfigError, match=r"data.n_shadow=100 .*data.n_members=150"):
        run_experiment(
            "single", [*CONTRACT, "data.n_shadow=100", "attacks=[ib]", f"tracking.uri={uri}"]
        )
    assert not (tmp_path / "mlflow.db").exists() or _no_running(uri)


def _no_running(uri: str) -> bool:
    import mlflow

    client = mlflow.MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    return all(r.info.status != "RUNNING" for r in client.search_runs(exps))


def test_calibrated_thresholds_are_a_function_of_shadow_data_only(leaking_context):
    """Permuting the target's members, or replacing them by other points, leaves the chosen
    thresholds (and so the decisions on any fixed point) unchanged; only the score of the
    decisions against the true membership moves."""
    from lit_mia.attacks.scoring import calibration_thresholds

    ctx = leaking_context
    before = calibration_thresholds(ctx, "ib")
    perm = ctx.split.members[np.random.default_rng(0).permutation(len(ctx.split.members))]
    swapped = AttackContext.build(ctx.cfg, ctx.bundle, _with_members(ctx.split, perm), ctx.target)
    swapped._shadows = ctx._shadows  # the same shadow model: no retraining
    assert calibration_thresholds(swapped, "ib") == before
    other = _with_members(ctx.split, ctx.split.validation, validation=ctx.split.members)
    replaced = AttackContext.build(ctx.cfg, ctx.bundle, other, ctx.target)
    replaced._shadows = ctx._shadows
    assert calibration_thresholds(replaced, "ib") == before


def _with_members(split, members, **kw):
    from dataclasses import replace

    return replace(split, members=np.asarray(members), **kw)


def test_ia_sweep_chooses_eps_on_the_shadow_not_the_target():
    """Defect 1: the calibrated number is the target's accuracy at the eps the *shadow*
    prefers, never the max over eps of the target's calibrated accuracy."""
    series = {
        "acc_best": [0.60, 0.70, 0.65],
        "acc_calibrated": [0.55, 0.52, 0.68],  # the target would prefer eps 0.2 ...
        "acc_calibrated_shadow": [0.58, 0.66, 0.61],  # ... the adversary sees eps 0.1
    }
    out = choose_eps(series, [0.0, 0.1, 0.2])
    assert out["eps_calibrated"] == 0.1
    assert out["acc_calibrated_chosen_eps"] == 0.52
    assert out["eps_best"] == 0.1
    assert out["acc_best_max"] == 0.70
    assert "acc_calibrated_max" not in out


def test_ia_sweep_end_to_end_logs_the_shadow_choice(leaking_context):
    from lit_mia.attacks.registry import ATTACKS

    res = ATTACKS["ia_sweep"].run(_with_eps_list(leaking_context, [0.0, 0.05]))
    s, m = res.series, res.metrics
    pick = int(np.argmax(s["acc_calibrated_shadow"]))
    assert m["eps_calibrated"] == s["eps"][pick]
    assert m["acc_calibrated_chosen_eps"] == s["acc_calibrated"][pick]


def _with_eps_list(ctx, eps_list):
    from dataclasses import replace

    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(ctx.cfg, {"attack": {"eps_list": eps_list}})
    return replace(ctx, cfg=cfg)
