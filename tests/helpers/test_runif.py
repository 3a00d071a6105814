"""RunIf (tests/helpers/runif.py): a missing requirement skips with its reason; in CI a missing
requirement CI provides (postgres, chromium, ray) fails instead; met requirements run."""

from __future__ import annotations

import pytest

from tests.helpers import runif
from tests.helpers.runif import RunIf


@pytest.fixture
def nothing_here(monkeypatch):
    """A machine with none of the optional requirements."""
    monkeypatch.setattr(runif, "_gpus", lambda: 0)
    monkeypatch.setattr(runif, "_postgres_missing", lambda: "PostgreSQL server binaries")
    monkeypatch.setattr(runif, "_chromium_missing", lambda: "a browser at /usr/bin/chromium")
    monkeypatch.setattr(runif, "_module_missing", lambda module, what: what)


@pytest.mark.parametrize(
    ("requirement", "words"),
    [
        ({"gpu": True}, "1 CUDA device(s) (0 here)"),
        ({"gpu": 2}, "2 CUDA device(s)"),
        ({"postgres": True}, "PostgreSQL"),
        ({"chromium": True}, "/usr/bin/chromium"),
        ({"art": True}, "adversarial-robustness-toolbox"),
        ({"example_plugin": True}, "lit_mia_example"),
        ({"ray": True}, "the ray package"),
    ],
)
def test_missing_requirement_skips_outside_ci(nothing_here, monkeypatch, requirement, words):
    monkeypatch.delenv("LIT_MIA_CI", raising=False)
    mark = RunIf(**requirement).mark
    assert mark.name == "skipif"
    assert mark.args == (True,)
    assert words in mark.kwargs["reason"]
    assert mark.kwargs["reason"].startswith("needs ")


@pytest.mark.parametrize("requirement", ["postgres", "chromium", "ray"])
def test_ci_fails_what_it_must_provide(nothing_here, monkeypatch, requirement):
    monkeypatch.setenv("LIT_MIA_CI", "1")
    mark = RunIf(**{requirement: True}).mark
    assert mark.name == "runif_required"
    assert "CI (LIT_MIA_CI=1) must provide" in mark.kwargs["reason"]


def test_ci_still_skips_what_it_does_not_provide(nothing_here, monkeypatch):
    """CI has no GPU and need not have the dev extras: those skip there too."""
    monkeypatch.setenv("LIT_MIA_CI", "1")
    assert RunIf(gpu=True).mark.name == "skipif"
    assert RunIf(art=True).mark.name == "skipif"


def test_no_gpu_and_met_requirements(monkeypatch):
    monkeypatch.setattr(runif, "_gpus", lambda: 1)
    assert RunIf(no_gpu=True).mark.args == (True,)
    assert RunIf(gpu=True).mark.args == (False,)
    assert RunIf().mark.args == (False,)


def test_runif_required_fails_the_test(pytester):
    """The conftest hook turns the CI mark into a setup failure naming what is missing."""
    pytester.makeconftest("from tests.conftest import pytest_runtest_setup  # noqa: F401\n")
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.runif_required(reason='CI (LIT_MIA_CI=1) must provide a browser')\n"
        "def test_x():\n    pass\n"
    )
    res = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    res.assert_outcomes(errors=1)  # fails in setup: an error, exit code 1
    res.stdout.fnmatch_lines(["*must provide a browser*"])
