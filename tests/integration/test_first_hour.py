"""The first hour of a new user (issue 27): sweeps that never mix settings, Ctrl-C, reports of
the newest finished run, corrupt checkpoints, quiet and consistent output."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from lit_mia import cli
from lit_mia.sweep import fixed
from tests.conftest import runs_of
from tests.sweep.conftest import sweep_args

pytestmark = pytest.mark.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]
S = optuna.trial.TrialState


def _studies(tmp_path) -> dict[str, list]:
    url = f"sqlite:///{tmp_path}/mlruns/optuna.db"
    names = [s.study_name for s in optuna.get_all_study_summaries(url)]
    return {n: optuna.load_study(study_name=n, storage=url).trials for n in names}


def test_sweep_refuses_a_study_made_with_other_fixed_settings(tmp_path, capsys):
    assert cli.main(["sweep", "eps", *sweep_args(tmp_path, 1)]) == 0
    (first,) = _studies(tmp_path)["eps"]
    assert first.state == S.COMPLETE
    capsys.readouterr()

    # same study, other fixed settings: exit 2 naming the key, nothing trained or reported
    other = sweep_args(tmp_path, 2, "trainer.max_epochs=2", "data.n_members=48")
    assert cli.main(["sweep", "eps", *other]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: study 'eps' was created with other fixed settings")
    assert "trainer.max_epochs: 1 -> 2" in err
    assert "data.n_members: 64 -> 48" in err
    assert "--new-study" in err
    assert err.count("\n") == 1
    assert "| trial |" not in out
    assert [t.number for t in _studies(tmp_path)["eps"]] == [0]

    # searched keys, sweep.* and display keys may change: the study resumes to 2 trials
    same = sweep_args(tmp_path, 2, "trainer.enable_progress_bar=false", "target.eps=0.3")
    assert cli.main(["sweep", "eps", *same]) == 0
    assert sum(t.state == S.COMPLETE for t in _studies(tmp_path)["eps"]) == 2

    # --new-study: the study of this setting, named by its settings' hash
    assert cli.main(["sweep", "eps", *other, "--new-study"]) == 0
    studies = _studies(tmp_path)
    (new,) = [n for n in studies if n != "eps"]
    assert new.startswith("eps-")
    assert len(new) == len("eps-") + 8
    trials = studies[new]
    assert sum(t.state == S.COMPLETE for t in trials) == 2
    # the sampler (seeded by the study's name) may propose a point twice: pruned, never rerun
    assert all(t.state == S.COMPLETE or "duplicate_of" in t.user_attrs for t in trials)
    assert len(studies["eps"]) == 2  # the old study is untouched
    # the sweep's runs sit under its own MLflow experiment, not the base experiment's
    recorded = json.loads(
        optuna.load_study(
            study_name=new, storage=f"sqlite:///{tmp_path}/mlruns/optuna.db"
        ).user_attrs[fixed.ATTR]
    )
    assert recorded["trainer.max_epochs"] == "2"
    assert "target.eps" not in recorded
    # each study its own MLflow parent with its own children
    runs = runs_of(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    tags = [(r.data.tags.get("lit_mia.study"), r.info.run_id) for r in runs]
    parents = {study: run_id for study, run_id in tags if study}
    assert set(parents) == {"eps", new}
    kids = [r.data.tags.get("mlflow.parentRunId") for r in runs]
    assert kids.count(parents["eps"]) == 2
    assert kids.count(parents[new]) == 2
    # the sweep's runs sit under its own MLflow experiment, not the base experiment's
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert {client.get_experiment(r.info.experiment_id).name for r in runs} == {"lit_mia/sweep/eps"}
    # a rerun of --new-study with the same settings resumes that study, trains nothing
    assert cli.main(["sweep", "eps", *other, "--new-study"]) == 0
    assert len(_studies(tmp_path)[new]) == len(trials)


def test_fixed_settings_differ_by_key():
    a = {"x": "1", "y": "2"}
    assert fixed.differing(a, a) == []
    assert fixed.differing(a, {"x": "1", "y": "3", "z": "0"}) == ["y: 2 -> 3", "z: (unset) -> 0"]
    assert fixed.digest(a) == fixed.digest(dict(reversed(a.items())))
    assert fixed.digest(a) != fixed.digest({"x": "1", "y": "3"})


# ---------------------------------------------------------------- Ctrl-C (item 4)
def _statuses(db) -> list[str]:
    import sqlite3

    if not db.is_file():
        return []
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return [r[0] for r in con.execute("select status from runs")]
    except sqlite3.OperationalError:  # tables not made yet, or locked
        return []


def _ctrl_c(tmp_path, args: list[str], running: int) -> tuple[int, str, str]:
    """Start `lit-mia ARGS` in its own process group, press Ctrl-C (SIGINT to the group, as a
    terminal does) once `running` MLflow runs are RUNNING; (exit code, stderr, stdout)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    db = tmp_path / "mlruns" / "mlflow.db"
    env = os.environ | {"PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "lit_mia.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        # as a terminal starts it, SIGINT at its default: a suite started in the background by
        # a shell without job control (`.ci/run &`) ignores SIGINT, and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    while _statuses(db).count("RUNNING") < running and p.poll() is None:
        assert time.monotonic() < deadline, "no run started"
        time.sleep(0.5)
    time.sleep(3)  # inside the fit
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return p.returncode, err, out


def test_ctrl_c_of_run_is_one_line_exit_130_runs_killed(tmp_path):
    from tests.conftest import TINY

    uri = f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db"
    code, err, _ = _ctrl_c(
        tmp_path, ["run", "single", *TINY, "trainer.max_epochs=200", "attacks=[ia]", uri], 1
    )
    assert code == 130, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("interrupted: MLflow runs marked KILLED; a rerun starts afresh")
    assert len(lines) == 1, err
    assert _statuses(tmp_path / "mlruns" / "mlflow.db") == ["KILLED"]


def test_ctrl_c_of_two_worker_sweep_is_one_line_exit_130(tmp_path):
    args = ["sweep", "eps", "--workers", "2", *sweep_args(tmp_path, 4, "trainer.max_epochs=200")]
    code, err, out = _ctrl_c(tmp_path, args, 3)  # the parent and one trial per worker
    assert code == 130, err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("interrupted: MLflow runs marked KILLED"), err
    statuses = _statuses(tmp_path / "mlruns" / "mlflow.db")
    assert "RUNNING" not in statuses, statuses
    assert statuses.count("KILLED") >= 2, statuses
    # the workers are as quiet as `lit-mia run`: no Lightning banners, tips or MLflow links
    for noise in ("GPU available", "TPU available", "💡", "View run", "🧪"):
        assert noise not in out + err, noise
    # the interrupted trials FAIL and are rerun by the next invocation
    trials = _studies(tmp_path)["eps"]
    assert {t.state for t in trials} == {S.FAIL}


# ---------------------------------------------------------------- report after Ctrl-C (item 3)
def test_report_skips_a_killed_run_and_a_killed_run_report_has_a_banner(
    tmp_path, monkeypatch, capsys
):
    import lit_mia.run as run_mod
    from tests.conftest import TINY

    uri = f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db"
    args = ["run", "single", *TINY, "attacks=[ia]", "attack.calibrate=false", uri]
    assert cli.main(["run", *args[1:], "trainer.max_epochs=1"]) == 0

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "evaluate", interrupt)
    assert cli.main(args) == 130
    monkeypatch.undo()
    runs = sorted(runs_of(uri.split("=", 1)[1]), key=lambda r: r.info.start_time)
    finished, killed = (r.info.run_id for r in runs)
    assert [r.info.status for r in runs] == ["FINISHED", "KILLED"]
    capsys.readouterr()

    out_file = tmp_path / "latest.html"
    assert cli.main(["report", "single", uri, "-o", str(out_file)]) == 0
    first, last = capsys.readouterr().out.strip().splitlines()
    assert first.startswith(f"reporting run {finished} (")
    assert "FINISHED" in first
    assert f"skipped: {killed[:8]} KILLED" in first
    assert last == f"report: {out_file.resolve()}"
    html = out_file.read_text()
    assert finished in html
    assert 'class="banner"' not in html

    # asked for by run id, the killed run is reported, with a banner before the first section
    assert cli.main(["report", killed, uri, "-o", str(out_file)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "KILLED" in first
    assert "did not finish" in first
    html = out_file.read_text()
    assert html.index('class="banner"') < html.index("<h2")
    assert "<strong>KILLED:</strong> this run was interrupted" in html


# ---------------------------------------------------------------- corrupt checkpoints (item 6)
def _bad_files(d) -> dict[str, list[str]]:
    """Bad `.pt` files of every kind -> words their error must hold."""
    import numpy as np
    import torch

    torch.save({"w": torch.zeros(64)}, d / "good.pt")
    raw = (d / "good.pt").read_bytes()
    (d / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    (d / "empty.pt").write_bytes(b"")
    (d / "text.pt").write_text("members: 1 2 3\n")
    torch.save(torch.nn.Linear(2, 2), d / "module.pt")
    torch.save({"w": torch.zeros(1), "f": np.dtype}, d / "object.pt")
    np.savez(d / "arrays.npz", a=np.zeros(3))
    (d / "arrays.npz").rename(d / "arrays.pt")
    return {
        "truncated.pt": ["is truncated or damaged", "copy or save it again"],
        "empty.pt": ["is empty (0 bytes)"],
        "text.pt": ["is a text file, not a torch.save file"],
        "module.pt": ["holds a whole module object", "torch.save(model.state_dict(), PATH)"],
        "object.pt": ["holds an object of numpy", "not only tensors"],
        "arrays.pt": ["is a NumPy .npz archive"],
    }


def test_bad_checkpoints_say_what_is_wrong_and_never_suggest_unsafe_loading(tmp_path):
    from lit_mia.errors import ConfigError
    from lit_mia.weights_file import load_weights

    for name, words in _bad_files(tmp_path).items():
        with pytest.raises(ConfigError) as e:
            load_weights(tmp_path / name)
        msg = str(e.value)
        assert msg.startswith(f"checkpoint '{tmp_path / name}' "), msg
        assert all(w in msg for w in words), msg
        assert "weights_only=False" not in msg, msg
        assert "add_safe_globals" not in msg, msg
        assert "\n" not in msg
    assert load_weights(tmp_path / "good.pt")["w"].shape == (64,)


def test_audit_of_a_truncated_checkpoint_exits_2_with_the_reason(tmp_path, capsys):
    _bad_files(tmp_path)
    (tmp_path / "members.txt").write_text("1 2 3\n")
    argv = ["audit", str(tmp_path / "truncated.pt"), "data.name=digits", "net.name=mlp"]
    argv += [f"members={tmp_path}/members.txt", f"tracking.uri={tmp_path}/mlruns"]
    assert cli.main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "is truncated or damaged" in line
    assert "weights_only" not in line
    assert not (tmp_path / "mlruns").exists()


# ---------------------------------------------------------------- quiet, consistent output (item 7)
def test_cache_misses_are_one_line_with_a_count(tmp_path, caplog):
    import torch

    from lit_mia.models.cache import ModelCache

    cache = ModelCache(tmp_path, "lira_shadow")
    cache.save({"seed": 0, "epochs": 1}, {"w": torch.zeros(1)})
    wanted = [{"seed": i, "epochs": 2} for i in range(8)] + [{"seed": 0, "epochs": 1}]
    with caplog.at_level("WARNING", logger="lit_mia.models.cache"):
        hits = cache.load_many(wanted)
    assert [h is not None for h in hits] == [False] * 8 + [True]
    (record,) = caplog.records
    msg = record.getMessage()
    assert msg.startswith("cache miss (lira_shadow): retraining 8 of 9 model(s)")
    assert "fields.epochs" in msg


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        ("trainer.max_epoch=3", "(did you mean 'trainer.max_epochs'?)"),
        ("atack.eps=0.1", "(did you mean 'attack'"),
        ("target.name=pdg", "(did you mean 'pgd'?); valid: "),
    ],
)
def test_unknown_keys_and_names_get_a_suggestion(capsys, override, hint):
    assert cli.main(["config", "single", override]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert hint in line, line


def test_no_suggestion_without_a_close_key(capsys):
    assert cli.main(["config", "single", "zzz=1"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_make_help_shows_values_not_make_variables():
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(
        ["make", "-s", "help"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "$(" not in out
    assert "on 127.0.0.1:5433, data in .pgdata/" in out
    assert "http://127.0.0.1:5001" in out
    assert "postgresql://postgres@127.0.0.1:5433/optuna" in out


def test_api_audit_with_read_only_arrays_warns_nothing(tmp_path):
    import warnings

    import numpy as np
    import torch
    from torch import nn

    import lit_mia

    rng = np.random.default_rng(0)
    x = rng.random((320, 8), dtype=np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)
    for a in (x, y):
        a.setflags(write=False)  # as arrays from np.load(mmap_mode="r") or a frozen dataset

    def train(x, y, seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(8, 2))

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. torch on read-only arrays
        result = lit_mia.audit(
            train(None, None, 0),
            (x[:80], y[:80]),
            (x[80:160], y[80:160]),
            attacks=["ib"],
            shadow_data=(x[160:], y[160:]),
            train_fn=train,
            overrides=["attack.bootstrap=20", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"],
        )
    assert "attack/ib/auc" in result.metrics


# ---------------------------------------------------------------- make setup's PyTorch (item 8)
PINNED = "torch==2.14.1 torchvision==0.29.1"
CPU_BUILD = "torch==2.14.1+cpu torchvision==0.29.1+cpu"
FAKE_PYTHON = """#!/bin/bash
# stands in for the venv's python: logs each call; CPU_RC / PIN_RC answer the torch installs
echo "$*" >> "$FAKE_LOG"
case "$*" in
  *"+cpu"*) exit "${CPU_RC:-0}" ;;
  *"install --quiet torch=="*) exit "${PIN_RC:-0}" ;;
esac
"""


def _make_env(tmp_path, gpu: bool, **extra) -> dict:
    """The environment of a host with or without `nvidia-smi` on the PATH (a fake one)."""
    import os
    import shutil

    strip = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TORCH_BUILD", "TORCH_SPEC", "TORCH_CPU_SPEC")
    env = {k: v for k, v in os.environ.items() if k not in strip}
    dirs = [d for d in env["PATH"].split(os.pathsep) if not (Path(d) / "nvidia-smi").exists()]
    if gpu:
        fake = tmp_path / "gpu-bin"
        fake.mkdir(exist_ok=True)
        (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA-SMI fake'\n")
        (fake / "nvidia-smi").chmod(0o755)
        dirs.insert(0, str(fake))
    env["PATH"] = os.pathsep.join(dirs)
    assert (shutil.which("nvidia-smi", path=env["PATH"]) is not None) == gpu
    return {**env, **extra}


def _make(tmp_path, env: dict, *args: str, dry: bool = False):
    import subprocess

    venv = tmp_path / "venv"
    cmd = ["make", *(["-n"] if dry else []), "setup", f"VENV={venv}", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)


def test_make_setup_picks_the_cpu_build_only_without_a_gpu(tmp_path):
    """`make -n setup`: a host without nvidia-smi tries the CPU-only build from the PyTorch
    CPU index (local version +cpu, so no other configured wheel can stand in) and falls back
    to the pin; a host with nvidia-smi, or TORCH_BUILD=cuda, installs the pin directly."""
    cpu = _make(tmp_path, _make_env(tmp_path, gpu=False), dry=True)
    assert cpu.returncode == 0, cpu.stderr
    assert f"--index-url https://download.pytorch.org/whl/cpu \\\n\t{CPU_BUILD}" in cpu.stdout
    assert f"installing {PINNED} instead" in cpu.stdout
    assert "pip uninstall --quiet --yes torch torchvision" in cpu.stdout
    for gpu in (
        _make(tmp_path, _make_env(tmp_path, gpu=True), dry=True),
        _make(tmp_path, _make_env(tmp_path, gpu=False), "TORCH_BUILD=cuda", dry=True),
    ):
        assert gpu.returncode == 0, gpu.stderr
        assert f"pip install --quiet {PINNED}\n" in gpu.stdout
        assert "+cpu" not in gpu.stdout
        assert "download.pytorch.org" not in gpu.stdout
    forced = _make(tmp_path, _make_env(tmp_path, gpu=True), "TORCH_BUILD=cpu", dry=True)
    assert CPU_BUILD in forced.stdout


def _fake_venv(tmp_path) -> Path:
    py = tmp_path / "venv" / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text(FAKE_PYTHON)
    py.chmod(0o755)
    return tmp_path / "log"


@pytest.mark.parametrize(
    ("cpu_rc", "pin_rc", "calls", "said", "ok"),
    [
        (0, 0, [CPU_BUILD, "-e .[dev]", "-e examples/"], [], True),  # the CPU build: done
        (1, 0, [CPU_BUILD, "uninstall", PINNED, "-e .[dev]", "-e examples/"], ["fb"], True),
        (1, 1, [CPU_BUILD, "uninstall", PINNED], ["fb"], False),  # nothing to fall back to
    ],
    ids=["cpu-build", "unreachable-falls-back", "fallback-fails"],
)
def test_make_setup_falls_back_to_the_pin_in_one_line(tmp_path, cpu_rc, pin_rc, calls, said, ok):
    """The real recipe with a stand-in venv python: a failed CPU-build attempt is removed
    (pip uninstall) before the pinned build goes in, the fallback says so in one line, and a
    failing fallback stops `make setup` without the stamp (nothing half-installed counts as
    set up)."""
    log = _fake_venv(tmp_path)
    env = _make_env(tmp_path, gpu=False, FAKE_LOG=str(log), CPU_RC=str(cpu_rc), PIN_RC=str(pin_rc))
    res = _make(tmp_path, env)
    assert (res.returncode == 0) == ok, res.stdout + res.stderr
    torch_calls = [c for c in log.read_text().splitlines() if "upgrade pip" not in c]
    for want, got in zip(calls, torch_calls, strict=True):
        assert want in got, torch_calls
    notes = [ln for ln in res.stdout.splitlines() if ln.startswith("setup: ")]
    assert notes[0].startswith("setup: no GPU (nvidia-smi not found)"), res.stdout
    assert len(notes) == 1 + len(said), res.stdout
    if said:
        assert "cannot be reached" in notes[1]
        assert f"installing {PINNED} instead" in notes[1]
    assert (tmp_path / "venv" / ".installed").exists() == ok
