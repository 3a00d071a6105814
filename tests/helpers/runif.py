"""`RunIf`: one decorator for every test that needs something of the machine (after
Lightning's `tests_pytorch/helpers/runif.py`).

    @RunIf(gpu=True)            a CUDA device (gpu=2: at least two)
    @RunIf(no_gpu=True)         no CUDA device (the refusals of `trainer=gpu`)
    @RunIf(postgres=True)       PostgreSQL server binaries (initdb, pg_ctl)
    @RunIf(chromium=True)       Debian's Chromium at /usr/bin/chromium and the playwright package
    @RunIf(art=True)            adversarial-robustness-toolbox (the dev extra)
    @RunIf(example_plugin=True) examples/lit_mia_example installed (`make setup`)
    @RunIf(ray=True)            the ray package and its `ray` command (the dev extra)

A missing requirement skips the test with a reason naming it. CI (`LIT_MIA_CI=1`, set by
`.ci/run`, which installs PostgreSQL and Chromium) must not skip what it provides: there a
missing postgres, chromium or ray fails the test instead (the `runif_required` marker, turned into
a failure by tests/conftest.py). It also works as `pytestmark = RunIf(...)`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# requirements CI provides: there a missing one is an error of the CI machine, not a skip
CI_PROVIDED = ("postgres", "chromium", "ray")


def in_ci() -> bool:
    return bool(os.environ.get("LIT_MIA_CI"))


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _postgres_missing() -> str | None:
    if shutil.which("initdb") or any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return None
    return "PostgreSQL server binaries (apt-get install postgresql)"


def _chromium_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package (pip install playwright)"
    if not CHROMIUM.exists():
        return f"a browser at {CHROMIUM} (apt-get install chromium)"
    return None


def _module_missing(module: str, what: str) -> str | None:
    return None if importlib.util.find_spec(module) is not None else what


def ray_command() -> str | None:
    """The `ray` command beside this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.exists() else shutil.which("ray")


def _ray_missing() -> str | None:
    if why := _module_missing("ray", "the ray package (pip install 'lit_mia[ray]')"):
        return why
    if ray_command() is None:
        return "the ray command (installed with the ray package)"
    return None


def missing(
    *,
    gpu: bool | int = False,
    no_gpu: bool = False,
    postgres: bool = False,
    chromium: bool = False,
    art: bool = False,
    example_plugin: bool = False,
    ray: bool = False,
) -> dict[str, str]:
    """{requirement: what is missing} for the requirements asked for and not met here."""
    out: dict[str, str] = {}
    if gpu:
        need = int(gpu)
        if _gpus() < need:
            out["gpu"] = f"{need} CUDA device(s) ({_gpus()} here)"
    if no_gpu and _gpus() > 0:
        out["no_gpu"] = "a machine without a GPU (this one has one)"
    if postgres and (why := _postgres_missing()):
        out["postgres"] = why
    if chromium and (why := _chromium_missing()):
        out["chromium"] = why
    if art and (why := _module_missing("art", "adversarial-robustness-toolbox (the dev extra)")):
        out["art"] = why
    if example_plugin and (
        why := _module_missing("lit_mia_example", "examples/lit_mia_example (`make setup`)")
    ):
        out["example_plugin"] = why
    if ray and (why := _ray_missing()):
        out["ray"] = why
    return out


def RunIf(**requirements) -> pytest.MarkDecorator:
    """A mark that skips the test where a requirement is missing, or fails it in CI where the
    missing requirement is one CI provides (postgres, chromium, ray)."""
    gone = missing(**requirements)
    if in_ci() and any(k in CI_PROVIDED for k in gone):
        reason = "; ".join(v for k, v in gone.items() if k in CI_PROVIDED)
        return pytest.mark.runif_required(reason=f"CI (LIT_MIA_CI=1) must provide {reason}")
    reason = "; ".join(gone.values())
    return pytest.mark.skipif(bool(gone), reason=f"needs {reason}" if gone else "")


__all__ = ["CHROMIUM", "RunIf", "in_ci", "missing", "ray_command"]
