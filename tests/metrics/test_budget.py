"""Leakage budgets (lit_mia/metrics/budget.py): parsing with one-line errors that list the
valid names, and verdicts where the worst attack decides, upper interval ends for TPR / AUC /
advantage and certified lower bounds for ε / μ."""

from __future__ import annotations

import pytest

from lit_mia.errors import ConfigError
from lit_mia.metrics.budget import budget_names, parse_budgets, verdict_line, verdicts


def test_names_and_forms():
    assert budget_names() == ["tpr@1%", "tpr@0.1%", "auc", "advantage", "eps", "mu"]
    a = parse_budgets(["tpr@0.1%=0.01,eps=1", "TPR@0.01=0.05", "auc=0.6"])
    assert [(b.name, b.keys, b.statistic, b.limit) for b in a] == [
        ("tpr@0.1%", ("tpr_at_fpr_0.001_ci_high",), "upper", 0.01),
        ("eps", ("eps_lb", "eps_one_run"), "lower", 1.0),
        ("tpr@1%", ("tpr_at_fpr_0.01_ci_high",), "upper", 0.05),
        ("auc", ("auc_ci_high",), "upper", 0.6),
    ]
    assert parse_budgets(None) == parse_budgets([]) == []


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("auc", "expected NAME=LIMIT with NAME one of tpr@1%, tpr@0.1%, auc, advantage, eps, mu"),
        ("acu=0.6", "unknown budget 'acu' (did you mean 'auc'?); valid: tpr@1%, tpr@0.1%, auc"),
        ("tpr@5%=0.1", "TPR is logged at FPR 1%, 0.1%; valid: tpr@1%"),
        ("tpr@x=0.1", "unknown budget 'tpr@x'"),
        ("auc=0.4", "budget auc must be a number in [0.5, 1], got '0.4'"),
        ("tpr@1%=lots", "budget tpr@1% must be a number in [0, 1], got 'lots'"),
        ("eps=-1", "budget eps must be a number in [0, inf], got '-1'"),
    ],
)
def test_bad_budgets_name_what_is_valid(spec, words):
    with pytest.raises(ConfigError) as e:
        parse_budgets([spec])
    assert words in str(e.value)
    assert "\n" not in str(e.value)


METRICS = {
    "attack/ib/tpr_at_fpr_0.001_ci_high": 0.03,
    "attack/lira/tpr_at_fpr_0.001_ci_high": 0.20,
    "attack/ib/eps_lb": 0.4,
    "attack/lira/eps_lb": 1.3,
    "attack/ib/auc_ci_high": 0.58,
    "target/test_acc": 0.9,
}


def test_the_worst_attack_decides_and_the_line_says_by_how_much():
    (v,) = verdicts(parse_budgets(["tpr@0.1%=0.05"]), METRICS)
    assert (v.value, v.attack, v.key, v.exceeded) == (
        0.20,
        "lira",
        "tpr_at_fpr_0.001_ci_high",
        True,
    )
    line = verdict_line([v])
    assert line == (
        "budget exceeded: tpr@0.1% upper end 0.2 (lira: tpr_at_fpr_0.001_ci_high) > 0.05 by 0.15"
    )


def test_within_budget_says_what_an_eps_budget_means():
    vs = verdicts(parse_budgets(["tpr@0.1%=0.25,eps=2,auc=0.6"]), METRICS)
    assert not any(v.exceeded for v in vs)
    line = verdict_line(vs)
    assert line.startswith("within budget: tpr@0.1% upper end 0.2 (lira")
    assert "eps lower bound 1.3 (lira: eps_lb) <= 2, not shown to exceed" in line
    assert "\n" not in line


def test_only_failed_budgets_are_listed_and_a_tie_at_the_limit_passes():
    vs = verdicts(parse_budgets(["eps=1", "auc=0.58", "tpr@0.1%=0.1"]), METRICS)
    assert [v.exceeded for v in vs] == [True, False, True]
    line = verdict_line(vs)
    assert line.startswith("budget exceeded: eps lower bound 1.3 (lira: eps_lb) > 1 by 0.3; ")
    assert "auc" not in line


def test_unmeasured_budget_is_reported():
    (v,) = verdicts(parse_budgets(["mu=1"]), METRICS)
    assert v.value is None
    assert not v.exceeded
    assert v.text() == "mu: not measured (no attack logged mu_lb)"
