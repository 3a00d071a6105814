"""The first hour of a new user (issue 27): sweeps that never mix settings, Ctrl-C, reports of
the newest finished run, corrupt checkpoints, quiet and consistent output."""

from __future__ import annotations

import json

import optuna
import pytest
from mlflow.tracking import MlflowClient

from lit_mia import cli
from lit_mia.sweep import fixed
from tests.test_sweep import runs_of, sweep_args

pytestmark = pytest.mark.filterwarnings("ignore")
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
    assert "trainer.max_epochs: 1 -> 2" in err and "data.n_members: 64 -> 48" in err
    assert "--new-study" in err and err.count("\n") == 1
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
    assert new.startswith("eps-") and len(new) == len("eps-") + 8
    assert [t.state for t in studies[new]] == [S.COMPLETE, S.COMPLETE]
    assert len(studies["eps"]) == 2  # the old study is untouched
    # the sweep's runs sit under its own MLflow experiment, not the base experiment's
    recorded = json.loads(
        optuna.load_study(
            study_name=new, storage=f"sqlite:///{tmp_path}/mlruns/optuna.db"
        ).user_attrs[fixed.ATTR]
    )
    assert recorded["trainer.max_epochs"] == "2" and "target.eps" not in recorded
    # each study its own MLflow parent with its own children
    runs = runs_of(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    tags = [(r.data.tags.get("lit_mia.study"), r.info.run_id) for r in runs]
    parents = {study: run_id for study, run_id in tags if study}
    assert set(parents) == {"eps", new}
    kids = [r.data.tags.get("mlflow.parentRunId") for r in runs]
    assert kids.count(parents["eps"]) == 2 and kids.count(parents[new]) == 2
    # the sweep's runs sit under its own MLflow experiment, not the base experiment's
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    assert {client.get_experiment(r.info.experiment_id).name for r in runs} == {"lit_mia/sweep/eps"}
    # a rerun of --new-study with the same settings resumes that study, trains nothing
    assert cli.main(["sweep", "eps", *other, "--new-study"]) == 0
    assert len(_studies(tmp_path)[new]) == 2


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
    from tests.test_run import TINY

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
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted: MLflow runs marked KILLED"), err
    statuses = _statuses(tmp_path / "mlruns" / "mlflow.db")
    assert "RUNNING" not in statuses and statuses.count("KILLED") >= 2, statuses
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
    from tests.test_run import TINY

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
    assert first.startswith(f"reporting run {finished} (") and "FINISHED" in first
    assert f"skipped: {killed[:8]} KILLED" in first
    assert last == f"report: {out_file.resolve()}"
    html = out_file.read_text()
    assert finished in html and 'class="banner"' not in html

    # asked for by run id, the killed run is reported, with a banner before the first section
    assert cli.main(["report", killed, uri, "-o", str(out_file)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "KILLED" in first and "did not finish" in first
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
        assert "weights_only=False" not in msg and "add_safe_globals" not in msg, msg
        assert "\n" not in msg
    assert load_weights(tmp_path / "good.pt")["w"].shape == (64,)


def test_audit_of_a_truncated_checkpoint_exits_2_with_the_reason(tmp_path, capsys):
    _bad_files(tmp_path)
    (tmp_path / "members.txt").write_text("1 2 3\n")
    argv = ["audit", str(tmp_path / "truncated.pt"), "data.name=digits", "net.name=mlp"]
    argv += [f"members={tmp_path}/members.txt", f"tracking.uri={tmp_path}/mlruns"]
    assert cli.main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "is truncated or damaged" in line and "weights_only" not in line
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
    assert "http://127.0.0.1:5001" in out and "postgresql://postgres@127.0.0.1:5433/optuna" in out


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


# ---------------------------------------------------------------- piped progress (item 1)
def test_piped_fit_says_where_it_is_every_interval(monkeypatch):
    import io

    import pytorch_lightning as pl
    import torch
    from torch import nn

    from lit_mia import progress

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, 2)

        def training_step(self, batch, _):
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            self.log("train/loss", loss, on_epoch=True, on_step=False)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def fit(every: float) -> list[str]:
        monkeypatch.setattr(progress, "PIPED_EVERY_S", every)
        out = io.StringIO()  # not a terminal, as a pipe
        data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
        trainer = pl.Trainer(
            max_epochs=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, callbacks=[progress.FitProgress("tiny", out)],
        )  # fmt: skip
        trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=16))
        return out.getvalue().splitlines()

    lines = fit(0.0)  # every epoch is past the interval: a line per epoch but the last
    assert [ln.split("  ")[0] for ln in lines[:-1]] == [f"tiny: epoch {e}/5" for e in range(1, 5)]
    assert all("loss " in ln and ln.endswith(" s)") for ln in lines[:-1])
    assert lines[-1].startswith("trained tiny: 5 epochs")
    quiet = fit(3600.0)  # a fit shorter than the interval: only its finished line
    assert len(quiet) == 1 and quiet[0].startswith("trained tiny: 5 epochs")
