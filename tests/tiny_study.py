"""A tiny two-target study (the `default` experiment: natural and PGD targets, attack ib, one
epoch on 64 + 64 samples) run once per session by `lit-mia run` in a subprocess with stdout
piped, into a temporary MLflow store. The report, browser and terminal tests share it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TINY = [
    "data.n_members=64",
    "data.n_nonmembers=64",
    "data.n_validation=32",
    "data.n_shadow=128",
    "data.batch_size=32",
    "net.name=lenet_mnist",
    "net.width=0.5",
    "trainer.max_epochs=1",
    "trainer.val_every_n_epochs=1",
    "trainer.val_adv_steps=2",
    "attack.steps=5",
    "attack.calibrate=false",
    "attacks=ib",  # no brackets: a single name is accepted
]


def env() -> dict[str, str]:
    """The environment of a CLI subprocess: one torch thread, the repo importable."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


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
    uri = f"sqlite:///{folder}/mlruns/mlflow.db"
    cmd = [sys.executable, "-m", "lit_mia.cli", "run", "default", *TINY, f"tracking.uri={uri}"]
    out = subprocess.run(cmd, capture_output=True, cwd=folder, env=env(), timeout=600)
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    return TinyStudy(folder, uri, out.stdout, out.stderr)
