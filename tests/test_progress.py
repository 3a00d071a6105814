"""What `lit-mia run` writes: one line per finished model and attack when piped, one redrawn
status line per model in a terminal (a real pseudo-terminal, lit_mia/progress.py)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

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
