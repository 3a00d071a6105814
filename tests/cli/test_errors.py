"""Bad input on the command line: `error: <one line naming the key>`, exit code 2, and no MLflow
run left RUNNING (none created, or ended FAILED). Most cases call `cli.main` in-process; a few
run the real process to prove its exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lit_mia import cli, config
from lit_mia.attacks.registry import ATTACKS
from lit_mia.data.datasets import DATASETS
from lit_mia.nets import NETS
from lit_mia.targets import TARGETS
from tests.helpers.runif import RunIf

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = config.group_names("experiment")
SWEEPS = sorted(p.stem for p in config.SWEEPS_DIR.glob("*.yaml"))


def valid(names) -> str:
    return "valid: " + ", ".join(sorted(names))


# A sweep file template for the sweep cases that need their own YAML (written to tmp_path).
SWEEP_OK = {
    "experiment": "single",
    "params": {"net.width": {"type": "categorical", "choices": [0.0625, 0.125]}},
    "objectives": [{"metric": "val/acc", "direction": "maximize"}],
}


def sweep_with(**changes) -> str:
    return yaml.safe_dump({**SWEEP_OK, **changes})


# (id, argv with "{tmp}" for tmp_path, files to write under tmp_path, substrings of the message)
CASES = [
    # ---- unknown names: the message lists the valid ones
    ("unknown-experiment", ["run", "nosuch"], {}, ["experiment 'nosuch'", valid(EXPERIMENTS)]),
    ("missing-experiment-file", ["run", "{tmp}/none.yaml"], {}, ["none.yaml", "does not exist"]),
    ("unknown-data", ["run", "single", "data.name=nope"], {}, ["data.name", valid(DATASETS)]),
    ("unknown-net", ["run", "single", "net.name=nope"], {}, ["net.name", valid(NETS)]),
    ("unknown-target", ["run", "single", "target.name=nope"], {}, ["target.name", valid(TARGETS)]),
    ("unknown-target-shorthand", ["run", "single", "target=nope"], {}, ["target.name", "'nope'"]),
    ("unknown-in-targets", ["run", "default", "targets=[natural,x]"], {}, ["targets", "'x'"]),
    ("unknown-attack", ["run", "single", "attack.name=nope"], {}, ["attack.name", valid(ATTACKS)]),
    ("unknown-in-attacks", ["run", "single", "attacks=[ib,nope]"], {}, ["attacks", "'nope'"]),
    (
        "unknown-trainer",
        ["run", "single", "trainer.name=x"],
        {},
        ["trainer.name", valid(config.group_names("trainer"))],
    ),
    ("unknown-activation", ["run", "single", "net.activation=x"], {}, ["net.activation", "relu"]),
    # ---- unknown keys, unparseable overrides, wrong types
    ("unknown-key", ["run", "single", "target.foo=1"], {}, ["unknown key 'target.foo'"]),
    ("unknown-top-key", ["run", "single", "foo=1"], {}, ["unknown key 'foo'"]),
    ("unparseable-bare", ["run", "single", "foo"], {}, ["cannot parse override 'foo'"]),
    ("unparseable-no-key", ["run", "single", "=3"], {}, ["cannot parse override '=3'"]),
    ("unparseable-space", ["run", "single", "a b=1"], {}, ["cannot parse override 'a b=1'"]),
    ("type-int", ["run", "single", "trainer.max_epochs=abc"], {}, ["trainer.max_epochs", "abc"]),
    ("type-float", ["run", "single", "net.width=wide"], {}, ["net.width", "wide"]),
    ("type-bool", ["run", "single", "data.download=maybe"], {}, ["data.download", "maybe"]),
    ("type-int-float", ["run", "single", "data.n_members=1.5"], {}, ["data.n_members", "1.5"]),
    ("type-list", ["run", "single", "attacks={x: 1}"], {}, ["attacks must be a list"]),
    ("type-null", ["run", "single", "target.eps="], {}, ["target.eps"]),
    # ---- values out of range
    ("negative-seed", ["run", "single", "seed=-1"], {}, ["seed must be >= 0"]),
    ("negative-target-eps", ["run", "single", "target.eps=-0.1"], {}, ["target.eps", "-0.1"]),
    ("target-eps-above-1", ["run", "single", "target.eps=2"], {}, ["target.eps", "[0, 1]"]),
    ("attack-eps-above-1", ["run", "single", "attack.eps=1.5"], {}, ["attack.eps", "1.5"]),
    ("negative-target-steps", ["run", "single", "target.steps=-1"], {}, ["target.steps", "-1"]),
    ("pgd-zero-steps", ["run", "single", "target=pgd", "target.steps=0"], {}, ["target.steps"]),
    ("negative-attack-steps", ["run", "single", "attack.steps=-2"], {}, ["attack.steps", "-2"]),
    ("width-zero", ["run", "single", "net.width=0"], {}, ["net.width must be > 0"]),
    ("width-negative", ["run", "single", "net.width=-1"], {}, ["net.width must be > 0", "-1"]),
    ("depth-zero", ["run", "single", "net.depth=0"], {}, ["net.depth"]),
    ("dropout-one", ["run", "single", "net.dropout=1"], {}, ["net.dropout"]),
    (
        "ratio-above-1",
        ["run", "single", "target=pgd", "target.ratio=1.5"],
        {},
        ["target.ratio", "1.5"],
    ),
    (
        "ratio-mode",
        ["run", "single", "target=pgd", "target.ratio_mode=x"],
        {},
        ["target.ratio_mode must be"],
    ),
    (  # a key of another regime (pgd's ratio for natural)
        "key-of-other-regime",
        ["run", "single", "target.ratio=0.5"],
        {},
        ["unknown key 'target.ratio'"],
    ),
    ("optimizer", ["run", "single", "target.optimizer=rmsprop"], {}, ["target.optimizer"]),
    ("lr-zero", ["run", "single", "target.lr=0"], {}, ["target.lr"]),
    ("kl-bins", ["run", "single", "attack.kl_bins=1"], {}, ["attack.kl_bins"]),
    ("max-epochs-zero", ["run", "single", "trainer.max_epochs=0"], {}, ["trainer.max_epochs"]),
    ("devices-zero", ["run", "single", "trainer.devices=0"], {}, ["trainer.devices", "got 0"]),
    ("devices-junk", ["run", "single", "trainer.devices=abc"], {}, ["trainer.devices", "'abc'"]),
    ("devices-cpu-list", ["run", "single", "trainer.devices=[0,1]"], {}, ["trainer.devices"]),
    ("accelerator", ["run", "single", "trainer.accelerator=tpu"], {}, ["trainer.accelerator"]),
    (
        "ibp-kappa",
        ["run", "single", "target=ibp", "target.kappa_end=1.5"],
        {},
        ["target.kappa_end"],
    ),
    (
        "ibp-schedule-after-max-epochs",
        ["run", "single", "target=ibp", "trainer.max_epochs=5"],
        {},
        ["target.warmup_epochs", "trainer.max_epochs"],
    ),
    ("dual-proj", ["run", "single", "target=dual", "target.proj=0"], {}, ["target.proj"]),
    (
        "dp-batchnorm",
        [
            "run",
            "single",
            "target.dp_noise_multiplier=1.0",
            "net=wide_resnet",
            "net.width=0.25",
            "net.depth=1",
        ],
        {},
        ["BatchNorm"],
    ),
    ("trades-beta", ["run", "single", "target=trades", "target.beta=-1"], {}, ["target.beta"]),
    (
        "ibp-net-unbounded",
        ["run", "single", "target=ibp", "net=wide_resnet", "net.width=0.25", "net.depth=1"],
        {},
        ["IBP", "wide_resnet"],
    ),
    ("strategy", ["run", "single", "trainer.strategy=foo"], {}, ["trainer.strategy", "ddp"]),
    ("precision", ["run", "single", "trainer.precision=8"], {}, ["trainer.precision", "32-true"]),
    ("no-attacks", ["run", "single", "attacks=[]"], {}, ["attacks", valid(ATTACKS)]),
    ("no-shadow", ["run", "single", "data.n_shadow=0"], {}, ["data.n_shadow", "calibrate"]),
    # ---- split sizes and data (checked when the data is built, before any MLflow run)
    ("members-zero", ["run", "single", "data.n_members=0"], {}, ["data.n_members must be >= 1"]),
    ("negative-validation", ["run", "single", "data.n_validation=-1"], {}, ["data.n_validation"]),
    (
        "members-exceed-mnist5k",
        ["run", "single", "data.n_members=5000"],
        {},
        ["data.n_members", "5000 samples of the mnist5k"],
    ),
    (
        "members-exceed-digits",
        ["run", "single", "data=digits", "data.n_members=2000"],
        {},
        ["data.n_members", "1797 samples of the digits"],
    ),
    (
        "missing-data-root",
        ["run", "single", "data.name=cifar10", "data.root={tmp}/empty"],
        {"empty/.keep": ""},
        ["data.root", "cifar10", "data.download=true"],
    ),
    (
        "net-too-big-for-digits",
        ["run", "single", "data.name=digits", "net.name=lenet_mnist"],
        {},
        ["lenet_mnist", "8x8"],
    ),
    # ---- bad experiment files
    (
        "experiment-file-unknown-key",
        ["run", "{tmp}/exp.yaml"],
        {"exp.yaml": "target: {foo: 1}\n"},
        ["unknown key 'target.foo'", "exp.yaml"],
    ),
    (
        "experiment-file-wrong-type",
        ["run", "{tmp}/exp.yaml"],
        {"exp.yaml": "trainer: {max_epochs: many}\n"},
        ["trainer.max_epochs", "exp.yaml"],
    ),
    (
        "experiment-file-not-a-mapping",
        ["run", "{tmp}/exp.yaml"],
        {"exp.yaml": "- a\n- b\n"},
        ["exp.yaml", "mapping"],
    ),
    # ---- sweeps
    ("unknown-sweep", ["sweep", "nosuch"], {}, ["sweep 'nosuch'", valid(SWEEPS)]),
    ("sweep-n-trials", ["sweep", "eps", "sweep.n_trials=-1"], {}, ["sweep.n_trials", "-1"]),
    ("sweep-sampler", ["sweep", "eps", "sweep.sampler=x"], {}, ["sweep.sampler", "nsga2, random"]),
    ("sweep-unknown-key", ["sweep", "eps", "sweep.foo=1"], {}, ["unknown key 'sweep.foo'"]),
    ("sweep-bad-override", ["sweep", "eps", "trainer.max_epochs=x"], {}, ["trainer.max_epochs"]),
    ("sweep-unparseable", ["sweep", "eps", "foo"], {}, ["cannot parse override 'foo'"]),
    (
        "sweep-objective-attack-not-run",
        ["sweep", "eps", "attacks=[ib]"],
        {},
        ["attack/ia/advantage_best", "attacks=['ib']"],
    ),
    (
        "sweep-objective-unknown-attack",
        ["sweep", "{tmp}/s.yaml"],
        {"s.yaml": sweep_with(objectives=[{"metric": "attack/nope/auc"}])},
        ["attack/nope/auc", "attacks="],
    ),
    (
        "sweep-objective-prefix",
        ["sweep", "{tmp}/s.yaml"],
        {"s.yaml": sweep_with(objectives=[{"metric": "acc"}])},
        ["'acc'", "val/"],
    ),
    (
        "sweep-objective-direction",
        ["sweep", "{tmp}/s.yaml"],
        {"s.yaml": sweep_with(objectives=[{"metric": "target/test_acc", "direction": "up"}])},
        ["objectives.direction", "maximize, minimize"],
    ),
    (
        "sweep-param-not-a-key",
        ["sweep", "{tmp}/s.yaml"],
        {"s.yaml": sweep_with(params={"net.foo": {"type": "int", "low": 1, "high": 2}})},
        ["net.foo"],
    ),
    (
        "sweep-param-range",
        ["sweep", "{tmp}/s.yaml"],
        {"s.yaml": sweep_with(params={"target.eps": {"low": 0.3, "high": 0.1}})},
        ["params.target.eps", "low <= high"],
    ),
    (
        "sweep-param-type",
        ["sweep", "{tmp}/s.yaml"],
        {"s.yaml": sweep_with(params={"net.width": {"type": "bool"}})},
        ["params.net.width.type", "categorical"],
    ),
    (
        "sweep-no-params",
        ["sweep", "{tmp}/s.yaml"],
        {"s.yaml": sweep_with(params={})},
        ["params"],
    ),
    (
        "sweep-tie",
        ["sweep", "{tmp}/s.yaml"],
        {"s.yaml": sweep_with(tie={"attack.eps": "target.eps"})},
        ["tie.attack.eps", "target.eps"],
    ),
    (
        "sweep-unknown-experiment",
        ["sweep", "{tmp}/s.yaml"],
        {"s.yaml": sweep_with(experiment="nosuch")},
        ["experiment 'nosuch'", valid(EXPERIMENTS)],
    ),
    (
        "sweep-file-unknown-key",
        ["sweep", "{tmp}/s.yaml"],
        {"s.yaml": sweep_with(sweeep={"n_trials": 1})},
        ["unknown key 'sweeep'"],
    ),
    (
        "sweep-two-targets",
        ["sweep", "eps", "targets=[natural,pgd]"],
        {},
        ["exactly one target"],
    ),
    ("config-unknown-net", ["config", "single", "net=x"], {}, ["net.name", valid(NETS)]),
    ("config-bad-value", ["config", "default", "attack.eps=-1"], {}, ["attack.eps"]),
]


def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mlruns/mlflow.db"


def assert_no_running_run(tmp_path: Path) -> None:
    """No MLflow run was created, or every run ended FAILED (never RUNNING)."""
    if not (tmp_path / "mlruns" / "mlflow.db").exists():
        return
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    exps = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in exps]) if exps else []
    assert all(r.info.status == "FAILED" for r in runs), [r.info.status for r in runs]


def assert_one_line_error(err: str, expected: list[str]) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: "), line
    for part in expected:
        assert part in line, f"{part!r} not in {line!r}"
    assert "Traceback" not in err
    return line


def test_at_least_eighteen_cases() -> None:
    assert len(CASES) >= 18
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("argv", "files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_exits_2(argv, files, expected, tmp_path, capsys) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc = cli.main([*args, f"tracking.uri={tracking_uri(tmp_path)}"])
    err = capsys.readouterr().err
    assert rc == cli.EXIT_CONFIG == 2, err
    assert_one_line_error(err, [e.replace("{tmp}", str(tmp_path)) for e in expected])
    assert_no_running_run(tmp_path)
    assert not (tmp_path / "mlruns" / "optuna.db").exists()


def test_argparse_errors_exit_2(capsys) -> None:
    for argv in ([], ["bogus"], ["run"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
    assert "usage: lit-mia" in capsys.readouterr().err


# ---------------------------------------------------------------- good input
def test_config_prints_yaml(capsys) -> None:
    assert cli.main(["config", "single", "target=pgd"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["target"]["name"] == "pgd"
    assert cfg["target"]["eps"] == 0.1


def test_config_default_prints_one_yaml_per_target(capsys) -> None:
    assert cli.main(["config", "default"]) == 0
    out = capsys.readouterr().out
    assert "# target natural" in out
    assert "# target pgd" in out
    parts = out.split("# target pgd")
    natural = yaml.safe_load(parts[0].replace("# target natural", ""))
    pgd = yaml.safe_load(parts[1])
    assert natural["target"]["name"] == "natural"
    assert pgd["target"]["name"] == "pgd"
    assert pgd["target"]["eps"] == 0.1
    assert natural["target"]["eps"] == 0.0


def test_list(capsys) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    rows = out.strip().splitlines()
    lines = dict(line.split(": ", 1) for line in rows if ": " in line and line[0] != " ")
    for group in (*config.GROUPS, "experiment"):
        if group != "attack":
            assert lines[group] == ", ".join(config.group_names(group))
    assert lines["sweeps"] == ", ".join(SWEEPS)
    listed = {r.split()[0]: r.split()[1] for r in rows if r.startswith("  ")}
    assert listed == {name: a.kind for name, a in ATTACKS.items()}  # every attack, with kind
    for name, a in ATTACKS.items():
        assert any(r.split()[0] == name and r.endswith(a.description) for r in rows)


# ---------------------------------------------------------------- the real process
def _lit_mia(*args: str, tmp_path: Path, script: bool = False) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "lit-mia"
    cmd = [str(exe)] if script else [sys.executable, "-m", "lit_mia.cli"]
    return subprocess.run(
        [*cmd, *args, f"tracking.uri={tracking_uri(tmp_path)}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_process_exit_code_unknown_experiment(tmp_path) -> None:
    p = _lit_mia("run", "nosuch", tmp_path=tmp_path)
    assert p.returncode == 2, p.stderr
    assert_one_line_error(p.stderr, ["experiment 'nosuch'", valid(EXPERIMENTS)])
    assert_no_running_run(tmp_path)


def test_console_script_exit_code(tmp_path) -> None:
    if not (Path(sys.executable).parent / "lit-mia").exists():
        pytest.skip("lit-mia console script not installed beside this python")
    p = _lit_mia("run", "single", "trainer.max_epochs=abc", tmp_path=tmp_path, script=True)
    assert p.returncode == 2, p.stderr
    assert_one_line_error(p.stderr, ["trainer.max_epochs"])
    assert_no_running_run(tmp_path)


@RunIf(no_gpu=True)
def test_gpu_trainer_without_gpu_exits_2(tmp_path, capsys) -> None:
    rc = cli.main(["run", "single", "trainer=gpu", f"tracking.uri={tracking_uri(tmp_path)}"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "accelerator=gpu" in err
    assert "cannot start here" in err
    assert "Traceback" not in err
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()
