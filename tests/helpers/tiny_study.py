"""A tiny two-target study (the `default` experiment: natural and PGD targets, attack ib, one
epoch on 64 + 64 samples) run by `lit-mia run` in a subprocess with stdout piped, into a
temporary MLflow store; once per session through the `tiny_study` fixture of tests/conftest.py.
The report, browser and progress tests share it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import TINY_STUDY, cli_env, store_uri


@dataclass
class TinyStudy:
    folder: Path
    uri: str
    stdout: bytes  # what the piped `lit-mia run` wrote to stdout
    stderr: bytes

    @property
    def tracking(self) -> list[str]:
        return [f"tracking.uri={self.uri}"]


def run_tiny_study(folder: Path) -> TinyStudy:
    uri = store_uri(folder)
    cmd = [
        sys.executable,
        "-m",
        "lit_mia.cli",
        "run",
        "default",
        *TINY_STUDY,
        f"tracking.uri={uri}",
    ]
    out = subprocess.run(cmd, capture_output=True, cwd=folder, env=cli_env(), timeout=600)
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    return TinyStudy(folder, uri, out.stdout, out.stderr)
