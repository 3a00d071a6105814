"""`lit-mia plan` (lit_mia/plan.py): one table (or JSON) of the sizes lit_mia/metrics/planning.py
computes, and one `error:` line with exit 2 for bad keys, bad values and asks no sample meets."""

from __future__ import annotations

import json

import pytest

from lit_mia import cli
from lit_mia.metrics import planning


def run(capsys, *args):
    code = cli.main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_table_rows_are_the_planners(capsys):
    code, out, err = run(capsys, "fpr=1%,0.1%", "tpr=0.2", "half_width=0.05", "delta_auc=0.05")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("| ask | members | non-members | canaries |")
    assert len(lines) == 2 + 3
    tpr = planning.tpr_plan(0.01, 0.2, 0.05)
    assert f"| TPR@FPR=0.01 ±0.05 | {tpr.members:,} | {tpr.nonmembers:,} | - |" in lines[2]
    auc = planning.delta_auc_plan(0.6, 0.05, 0.0, 0.05, 0.8)
    assert f"| {auc.members:,} | {auc.members:,} | - |" in lines[4]
    assert "independent samples (r=0)" in lines[4]


def test_plan_json_has_the_same_numbers(capsys):
    code, out, _ = run(capsys, "delta_auc=-0.05", "auc=0.7", "correlation=0.4", "--json")
    assert code == 0
    (row,) = json.loads(out)
    plan = planning.delta_auc_plan(0.7, -0.05, 0.4, 0.05, 0.8)
    assert row == {
        "ask": "ΔAUC=-0.05 (0.7 vs 0.65)",
        "members": plan.members,
        "nonmembers": plan.members,
        "canaries": None,
        "achieved": {"power": pytest.approx(plan.achieved["power"])},
        "assumes": "Hanley-McNeil variance, same samples, r=0.4; two-sided α=0.05",
    }


def test_plan_keeps_a_row_one_method_cannot_reach(capsys):
    """At δ = 1e-3 the one-run audit's 2mδ term keeps ε >= 1 out of reach of guesses right at
    0.88, the held-out bound is not: exit 0, the one-run row says why."""
    code, out, err = run(capsys, "eps=1", "eps_true=2", "delta=1e-3", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["ask"] for r in rows] == ["ε≥1 held-out bound", "ε≥1 one-run audit"]
    mech = planning.check_mechanism("laplace", 2.0, 1e-3)
    assert rows[0]["members"] == planning.heldout_eps_plan(1.0, mech, 0.05, 0.8).members
    assert rows[0]["achieved"]["power"] >= 0.8
    assert rows[1]["canaries"] is None
    assert rows[1]["assumes"].startswith("not reachable: eps=1 cannot be certified")


BAD = [
    ([], "needs at least one of fpr="),
    (["fpx=0.1"], "unknown plan key 'fpx' (did you mean 'fpr'?); valid: fpr, tpr,"),
    (["fpr=0"], "fpr must be in (0, 1)"),
    (["fpr=-1%"], "fpr must be in (0, 1)"),
    (["fpr=abc"], "fpr must be a number, got 'abc'"),
    (["fpr=0.01", "tpr=0.005"], "tpr must be in (fpr=0.01, 1)"),
    (["fpr=0.01", "half_width=0.7"], "half_width must be in (0, 0.5)"),
    (["fpr=0.01", "nonmembers=999"], "nonmembers must be >= 1000"),
    (["delta_auc=0.1", "auc=1.2"], "auc must be in [0.5, 1)"),
    (["delta_auc=0.5"], "delta_auc must be non-zero with auc + delta_auc in [0.5, 1)"),
    (["delta_auc=0.05", "correlation=1"], "correlation must be in (-1, 1)"),
    (["fpr=0.01", "power=2"], "power must be in [0.5, 1)"),
    (["fpr=0.01", "alpha=0"], "alpha must be in (0, 0.5)"),
    (["eps=1"], "eps= needs eps_true="),
    (["eps=3", "eps_true=2"], "eps_true must be > eps=3"),
    (["eps=1", "eps_true=2", "mechanism=lapl"], "unknown mechanism 'lapl' (did you mean"),
    (["eps=1", "eps_true=2", "delta=0"], "delta must be in (0, 1)"),
    (["eps=1", "eps_true=2", "guess_fraction=0"], "guess_fraction must be in (0, 1]"),
    (["eps=1.95", "eps_true=2", "mechanism=rr", "delta=0.05"], "is certifiably at most"),
]


@pytest.mark.parametrize(("args", "words"), BAD, ids=[" ".join(a) or "empty" for a, _ in BAD])
def test_plan_bad_input_is_one_line_exit_2(capsys, args, words):
    code, out, err = run(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert words in lines[0], lines[0]
    assert out == ""
