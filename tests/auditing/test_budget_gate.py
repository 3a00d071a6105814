"""`lit-mia audit ... --budget NAME=LIMIT` (lit_mia/cli.py, lit_mia/metrics/budget.py) on the
session's memorising digits MLP (tests/conftest.py::trained): a tight budget exits 3 with one
`budget exceeded:` line, a loose one exits 0 with `within budget:`; either way the MLflow run
ends FINISHED and carries the verdict as tags. Bad budgets exit 2 before any run exists."""

from __future__ import annotations

import pytest

from lit_mia import cli
from tests.auditing.test_checkpoint import runs
from tests.conftest import AUDIT_NET


def audit(trained, tmp_path, *budget):
    d, _ = trained
    return [
        "audit",
        str(d / "model.pt"),
        *AUDIT_NET,
        "attacks=[ib]",
        "attack.calibrate=false",
        f"members={d / 'members.txt'}",
        f"tracking.uri={tmp_path / 'mlruns'}",
        "tracking.log_checkpoint=false",
        *budget,
    ]


def test_tight_budget_exits_3_and_loose_budget_exits_0(trained, tmp_path, capsys):
    uri = str(tmp_path / "mlruns")
    assert cli.main(audit(trained, tmp_path, "--budget", "auc=0.5,eps=100")) == 3
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("budget exceeded: auc upper end "), last
    assert "(ib: auc_ci_high) > 0.5 by " in last
    assert "eps" not in last  # only the failed budget is named
    (run,) = runs(uri)
    assert run.info.status == "FINISHED"
    assert run.data.tags["lit_mia.budget"] == "exceeded"
    assert run.data.tags["lit_mia.budget.detail"] == last
    auc_high = run.data.metrics["attack/ib/auc_ci_high"]
    assert auc_high > 0.5
    assert f"by {auc_high - 0.5:.4g}" in last

    assert cli.main(audit(trained, tmp_path, "--budget", "auc=1", "--budget", "tpr@1%=1")) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("within budget: auc upper end "), last
    assert "tpr@1% upper end" in last
    newest = max(runs(uri), key=lambda r: r.info.start_time)
    assert newest.info.status == "FINISHED"
    assert newest.data.tags["lit_mia.budget"] == "within"


@pytest.mark.parametrize(
    ("budget", "words"),
    [
        (["--budget", "acu=0.6"], "unknown budget 'acu' (did you mean 'auc'?); valid: tpr@1%"),
        (["--budget", "tpr@5%=0.1"], "TPR is logged at FPR 1%, 0.1%"),
        (["--budget", "eps"], "expected NAME=LIMIT"),
        (["--budget", "auc=0.9", "attack.bootstrap=0"], "attack.bootstrap=0 turns off"),
    ],
)
def test_bad_budget_exits_2_before_any_run(trained, tmp_path, capsys, budget, words):
    assert cli.main(audit(trained, tmp_path, *budget)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    assert words in err[0], err[0]
    assert not (tmp_path / "mlruns").exists()


def test_dry_run_checks_and_prints_the_budgets(trained, tmp_path, capsys):
    argv = audit(trained, tmp_path, "--budget", "tpr@0.1%=0.01,eps=2", "--dry-run")
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run: every check passed")
    assert out.strip().splitlines()[-1] == "budget: tpr@0.1% <= 0.01; eps <= 2"


def test_run_refuses_a_bad_budget_before_training(tmp_path, capsys):
    argv = ["run", "single", "--budget", "tpr@2%=0.1", f"tracking.uri={tmp_path}/mlruns"]
    assert cli.main(argv) == 2
    assert "valid: tpr@1%, tpr@0.1%, auc, advantage, eps, mu" in capsys.readouterr().err
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_run_gate_tags_the_target_run(tmp_path, capsys):
    """`lit-mia run` shares the gate: a tiny natural target, I_B only."""
    from tests.conftest import runs_of, store_uri, tiny

    argv = ["run", "single", *tiny(tmp_path, "attacks=[ib]", "attack.calibrate=false")]
    assert cli.main([*argv, "--budget", "auc=0.5"]) == 3
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("budget exceeded: auc upper end "), last
    (run,) = runs_of(store_uri(tmp_path))
    assert run.info.status == "FINISHED"
    assert run.data.tags["lit_mia.budget"] == "exceeded"


def test_gate_exit_codes(capsys):
    """An exceeded budget fails the gate even when another was not measured (exit 3); a budget
    no attack measured is exit 2; per target one line, prefixed with its label."""
    from lit_mia.metrics.budget import parse_budgets
    from lit_mia.tracking import TargetResult

    budgets = parse_budgets(["eps=1,mu=1"])

    def gate(**eps_by_target):
        results = {
            t: TargetResult(t, None, {"attack/ib/eps_lb": e}) for t, e in eps_by_target.items()
        }
        return cli._gate(budgets, results, None), capsys.readouterr().out.strip().splitlines()

    code, lines = gate(natural=2.0)
    assert code == 3
    assert lines == ["budget exceeded: eps lower bound 2 (ib: eps_lb) > 1 by 1"]
    code, lines = gate(natural=0.5)
    assert code == 2
    assert lines == ["budget not measured: mu: not measured (no attack logged mu_lb)"]
    code, lines = gate(natural=0.5, pgd=3.0)
    assert code == 3
    assert lines[1] == "pgd: budget exceeded: eps lower bound 3 (ib: eps_lb) > 1 by 2"
