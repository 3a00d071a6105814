"""`--dry-run` and argument order on the command line (issue 22).

- Options and `key=value` overrides go in any order after the subcommand.
- A dry run makes every check the real command makes before it trains and prints the plan; it
  writes nothing (no MLflow store, no folder, no report) and refuses exactly what the real
  command refuses, with the same one-line error.
- `lit-mia report -o` creates missing folders and prints only a path it wrote.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lit_mia import cli
from tests.conftest import AUDIT_NET, TINY_DATA
from tests.helpers.runif import RunIf

TINY = [*TINY_DATA, "trainer.max_epochs=1"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "sweep eps --workers 2 sweep.n_trials=8 x.y=1",
            "sweep eps sweep.n_trials=8 x.y=1 --workers 2",
        ),
        ("sweep eps --workers 2 sweep.n_trials=8", "sweep --workers 2 eps sweep.n_trials=8"),
        ("run default --dry-run a=1 b=2", "run default a=1 b=2 --dry-run"),
        ("report default a=1 -o r.html b=2", "report default -o r.html a=1 b=2"),
        ("audit m.pt --dry-run members=f.txt", "audit m.pt members=f.txt --dry-run"),
    ],
)
def test_options_and_overrides_in_any_order(a, b):
    assert cli.parse(a.split()) == cli.parse(b.split())
    assert cli.parse(a.split()).overrides == [w for w in a.split()[2:] if "=" in w]


def test_missing_positional_names_only_it(capsys):
    with pytest.raises(SystemExit) as e:
        cli.parse(["sweep", "--workers", "2"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "required: sweep" in err
    assert "overrides" not in err.splitlines()[-1]


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "run", "default", "--dry-run")
    assert code == 0, err
    assert out.startswith("dry run: every check passed")
    for words in ("natural:", "pgd: pgd eps 0.1", "members 400", "shadow models 1"):
        assert words in out, out
    assert f"sqlite:///{tmp_path}/mlruns/mlflow.db (will be created)" in out
    code, out, err = run(capsys, "sweep", "eps", "--workers", "2", "sweep.n_trials=8", "--dry-run")
    assert code == 0, err
    assert "8 COMPLETE trials in all" in out
    assert "2 worker(s)" in out
    assert f"sqlite:///{tmp_path}/mlruns/optuna.db (will be created)" in out
    code, out, err = run(capsys, "run", "updates_leak_single", "--dry-run")
    assert code == 0, err
    assert "pools: shadow_base" in out, err
    assert os.listdir(tmp_path) == []  # no store, no cache, no folder


def _cases(tmp: Path, write: bool = True) -> dict[str, tuple[list[str], str]]:
    if write:
        (tmp / "members.txt").write_text("1 2 3\n")
    return {
        "shadow-pool": (["run", "single", "data.n_shadow=10"], "data.n_shadow=10 is too small"),
        "data-root": (
            ["run", "single", "data.name=mnist", f"data.root={tmp}/none"],
            "has no mnist",
        ),
        "split": (["run", "single", "data.n_members=5000"], "data.n_members"),
        "net-input": (["run", "single", "data.name=digits", *TINY], "needs inputs of at least"),
        "no-gpu": (["run", "single", "trainer.accelerator=gpu", *TINY], "cannot start here"),
        "driver": (["sweep", "eps", "sweep.storage=mysql://u@h/db"], "driver is not installed"),
        "not-a-url": (["sweep", "eps", "sweep.storage=nonsense"], "not a database URL"),
        "workers": (["sweep", "eps", "--workers", "0"], "--workers"),
        "checkpoint": (
            ["audit", f"{tmp}/none.pt", *AUDIT_NET, f"members={tmp}/members.txt"],
            "none.pt",
        ),
        "store": (["report", "default", f"tracking.uri={tmp}/none"], "no MLflow store"),
    }


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=RunIf(no_gpu=True)) if n == "no-gpu" else n
        for n in _cases(Path("/nonexistent-unused"), write=False)
    ],
)
def test_dry_run_refuses_what_the_run_refuses(name, tmp_path, monkeypatch, capsys):
    argv, words = _cases(tmp_path)[name]
    monkeypatch.chdir(tmp_path)
    real = run(capsys, *argv)
    dry = run(capsys, *argv, "--dry-run")
    assert real[0] == dry[0] == 2, (name, real, dry)
    assert dry[2] == real[2], name
    assert dry[2].startswith("error: "), name
    assert dry[2].count("\n") == 1, name
    assert words in dry[2], (name, dry[2])
    assert not (tmp_path / "mlruns").exists()


def test_audit_dry_run_checks_the_checkpoint(trained, tmp_path, monkeypatch, capsys):
    d, members = trained
    monkeypatch.chdir(tmp_path)
    argv = ["audit", str(d / "model.pt"), *AUDIT_NET, f"members={d / 'members.txt'}", "--dry-run"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "state dict matches net mlp on digits" in out
    assert f"members {len(members)}" in out
    wrong = [a.replace("net.width=0.25", "net.width=0.5") for a in argv]
    code, out, err = run(capsys, *wrong)
    assert code == 2
    assert "does not match net mlp (width=0.5" in err
    assert os.listdir(tmp_path) == []


def test_report_output_folders(tiny_study, tmp_path, capsys):
    out_file = tmp_path / "a" / "b" / "r.html"
    tr = tiny_study.tracking
    code, out, err = run(capsys, "report", "default", "-o", str(out_file), "--dry-run", *tr)
    assert code == 0, err
    assert f"would write {out_file} (will be created)" in out
    assert not (tmp_path / "a").exists()  # a dry run creates nothing
    code, out, err = run(capsys, "report", "default", *tr, "-o", str(out_file))
    assert code == 0, err
    assert out.strip().splitlines()[-1] == f"report: {out_file.resolve()}"
    assert out_file.is_file()
    code, out, err = run(capsys, "report", "default", *tr, "-o", str(tmp_path), "--dry-run")
    assert code == 2
    assert "it is a folder" in err
    assert out == ""
