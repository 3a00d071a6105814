"""Shared test setup: one torch thread.

The fast suite works on tiny tensors, where a second OpenMP thread buys little, and on a
loaded 2-core machine two threads per process make small ops 100x slower (threads spin-wait
for a core). One thread keeps the suite's time steady wherever it runs.
"""

import pytest
import torch

torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`), every test that uses the
    session-scoped `tiny_study` runs on one worker, so the study is trained once, not once per
    worker."""
    for item in items:
        if "tiny_study" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("tiny_study"))


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """A tiny two-target `lit-mia run default` (piped) in a temporary MLflow store, run once
    per session; shared by the report, browser and terminal tests (tests/tiny_study.py)."""
    from tests.tiny_study import run_tiny_study

    return run_tiny_study(tmp_path_factory.mktemp("tiny_study"))
