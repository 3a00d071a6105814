"""What `lit-mia run` writes: one line per finished model and attack when piped, one redrawn
status line per model in a terminal (a real pseudo-terminal, lit_mia/progress.py)."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import threading
import time

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from lit_mia import progress
from tests.conftest import TINY_STUDY, cli_env


def test_piped_run_has_no_progress_bars(tiny_study):
    out = tiny_study.stdout.decode()
    assert "\r" not in out
    assert "it/s" not in out
    assert "%|" not in out
    lines = out.splitlines()
    for label in ("natural", "pgd"):
        assert sum(ln.startswith(f"trained {label}: 1 epochs") for ln in lines) == 1, out
        assert sum(ln.startswith(f"attack ib on {label}: auc ") for ln in lines) == 1, out
        # the PGD accuracy of the evaluation samples is a phase of its own, with its line
        assert sum(ln.startswith(f"accuracy of {label}: test acc ") for ln in lines) == 1, out
        assert sum(ln.startswith(f"placebo control on {label}: ") for ln in lines) == 1, out
    assert "| natural |" in out
    assert "| pgd |" in out
    assert len(tiny_study.stdout) + len(tiny_study.stderr) < 20_000
    assert b"\r" not in tiny_study.stderr


def test_terminal_run_redraws_one_line_per_model(tmp_path):
    """Under a pty: the status line is rewritten with carriage returns, never one line per
    step; each model ends as one `trained ...` line."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [*TINY_STUDY, "trainer.max_epochs=2", "data.batch_size=8", f"tracking.uri={uri}"]
    cmd = [sys.executable, "-m", "lit_mia.cli", "run", "single", *args]
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.PIPE, cwd=tmp_path, env=cli_env())
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-3000:]
    out = b"".join(chunks).decode()
    lines = out.replace("\r\n", "\n").split("\n")
    assert "\r" in out.replace("\r\n", "")  # redrawn in place
    assert any("natural: epoch" in ln and "batch" in ln for ln in lines)  # the live display
    # no step or epoch ever ends a line: only the final summaries do
    done = [ln.rsplit("\r", 1)[-1] for ln in lines]
    assert sum(d.startswith("trained natural: 2 epochs") for d in done) == 1, out
    assert not any(d.startswith("natural: epoch") for d in done), out
    assert sum(d.startswith("attack ib on natural: auc") for d in done) == 1, out
    assert len([d for d in done if d.strip()]) < 20, out


# ------------------------------------------- piped heartbeats (issue 27: never silent > 30 s)
def _wait_for(stream: io.StringIO, text: str, n: int, timeout: float = 60.0) -> None:
    """Block until `text` occurs n times in `stream` (no assumption on how fast threads run)."""
    t0 = time.monotonic()
    while stream.getvalue().count(text) < n:
        assert time.monotonic() - t0 < timeout, stream.getvalue()
        time.sleep(0.005)


def _no_heartbeat_thread() -> bool:
    return not any(t.name == "lit-mia-progress" for t in threading.enumerate())


class _Tiny(pl.LightningModule):
    """Two batches an epoch; `hold(epoch, batch)` runs inside that training step."""

    def __init__(self, hold=None):
        super().__init__()
        self.net = nn.Linear(4, 2)
        self.hold = hold

    def training_step(self, batch, batch_idx):
        if self.hold is not None:
            self.hold(self.current_epoch, batch_idx)
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, on_epoch=True, on_step=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(module: pl.LightningModule, out: io.StringIO) -> None:
    data = torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    trainer = pl.Trainer(
        max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[progress.FitProgress("tiny", out)],
    )  # fmt: skip
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=16))


def test_piped_fit_says_where_it_is_while_it_trains(monkeypatch):
    """A step that takes longer than the interval: heartbeat lines name the model, the last
    finished epoch and batch and that epoch's loss; the fit still ends in one summary line."""
    monkeypatch.setattr(progress, "PIPED_EVERY_S", 0.01)
    out = io.StringIO()  # not a terminal, as a pipe

    def hold(epoch, batch):
        if (epoch, batch) == (1, 0):  # after epoch 1's metrics, wait for two heartbeats
            _wait_for(out, "tiny: epoch 1/3  batch 2/2  loss", 2)

    _fit(_Tiny(hold), out)
    lines = out.getvalue().splitlines()
    beats = [ln for ln in lines if ln.startswith("tiny: ")]
    any_time = r"tiny: epoch \d/3(  batch \d/2)?(  loss \d\.\d{3})?  \(\d+ s\)"
    assert all(re.fullmatch(any_time, b) for b in beats), beats
    held = r"tiny: epoch 1/3  batch 2/2  loss \d\.\d{3}  \(\d+ s\)"  # during the wait
    assert sum(bool(re.fullmatch(held, b)) for b in beats) >= 2, beats
    assert lines[-1].startswith("trained tiny: 3 epochs  loss ")
    assert _no_heartbeat_thread()


def test_piped_fit_shorter_than_the_interval_prints_one_line(monkeypatch):
    monkeypatch.setattr(progress, "PIPED_EVERY_S", 3600.0)
    out = io.StringIO()
    _fit(_Tiny(), out)
    (line,) = out.getvalue().splitlines()
    assert line.startswith("trained tiny: 3 epochs")
    assert _no_heartbeat_thread()


def test_a_failed_fit_stops_its_heartbeat(monkeypatch):
    monkeypatch.setattr(progress, "PIPED_EVERY_S", 0.01)

    def fail(epoch, batch):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        _fit(_Tiny(fail), io.StringIO())
    assert _no_heartbeat_thread()


def test_piped_task_and_steps_say_they_are_running(monkeypatch):
    """An attack (`task`) and a farm (`steps`) longer than the interval print a line each
    interval, then their one finished line; nothing is left running."""
    monkeypatch.setattr(progress, "PIPED_EVERY_S", 0.01)
    out = io.StringIO()
    with progress.task("attack ia on pgd", out) as t:
        _wait_for(out, "attack ia on pgd: running", 2)
        t.done("auc 0.600")
    lines = out.getvalue().splitlines()
    assert all(re.fullmatch(r"attack ia on pgd: running  \(\d+ s\)", ln) for ln in lines[:-1])
    assert re.fullmatch(r"attack ia on pgd: auc 0\.600  \(\d+\.\d s\)", lines[-1])

    monkeypatch.setattr(sys, "stdout", out := io.StringIO())
    for i in progress.steps(range(3), "shadow farm"):
        if i == 1:
            _wait_for(out, "shadow farm: 1/3  (", 2)
    lines = out.getvalue().splitlines()
    assert all(re.fullmatch(r"shadow farm: [01]/3  \(\d+ s\)", ln) for ln in lines[:-1]), lines
    assert re.fullmatch(r"shadow farm: 3/3  \(\d+\.\d s\)", lines[-1])
    assert _no_heartbeat_thread()


def test_only_the_innermost_heartbeat_speaks(monkeypatch):
    """A shadow fit inside an attack: while the fit runs, its lines, not the attack's."""
    monkeypatch.setattr(progress, "PIPED_EVERY_S", 0.01)
    out = io.StringIO()
    with progress.task("attack ia on pgd", out):
        _wait_for(out, "attack ia on pgd: running", 1)
        inner = progress.Heartbeat(lambda: "pgd (seed 1): epoch 2/40", out)
        start = len(out.getvalue())
        _wait_for(out, "pgd (seed 1): epoch 2/40", 3)
        # a beat of the outer one may have been on its way when the inner one started
        assert out.getvalue()[start:].count("attack ia on pgd: running") <= 1
        inner.stop()
        _wait_for(out, "attack ia on pgd: running", 2)
    assert _no_heartbeat_thread()


def test_a_terminal_gets_no_heartbeat_lines(monkeypatch):
    monkeypatch.setattr(progress, "PIPED_EVERY_S", 0.001)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    beat = progress.Heartbeat(lambda: "never", out)
    time.sleep(0.05)
    beat.stop()
    assert "never" not in out.getvalue()
    assert _no_heartbeat_thread()


def test_stages_speak_between_the_pieces_of_work(monkeypatch):
    """`run <experiment>: <stage> (N s)` while nothing inside speaks; the stage text follows
    `set`; an inner heartbeat takes over while it runs."""
    monkeypatch.setattr(progress, "PIPED_EVERY_S", 0.01)
    monkeypatch.setattr(sys, "stdout", out := io.StringIO())
    with progress.stages("run default", "checking the data and settings") as stage:
        _wait_for(out, "run default: checking the data and settings  (", 1)
        stage.set("comparing the targets")
        _wait_for(out, "run default: comparing the targets  (", 1)
        inner = progress.Heartbeat(lambda: "pgd: epoch 1/30")
        _wait_for(out, "pgd: epoch 1/30", 2)
        inner.stop()
    lines = out.getvalue().splitlines()
    assert all(re.fullmatch(r"run default: [a-z ]+  \(\d+ s\)|pgd: epoch 1/30", ln) for ln in lines)
    assert _no_heartbeat_thread()
