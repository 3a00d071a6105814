"""Shared test setup: one torch thread, fresh MLflow SQLite stores copied from a template.

The fast suite works on tiny tensors, where a second OpenMP thread buys little, and on a
loaded 2-core machine two threads per process make small ops 100x slower (threads spin-wait
for a core). One thread keeps the suite's time steady wherever it runs.
"""

import atexit
import os
import shutil
import sqlite3
import sys
import tempfile

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


# ---------------------------------------------------------------- MLflow SQLite template
# Most tests log into a fresh `sqlite:///<tmp_path>/mlruns/mlflow.db`. MLflow builds a new
# store by running its ~50 Alembic migrations, 2-3 s of CPU each time (some 50 times a run of
# the fast suite). In this test process the first migration fills a template file; every later
# fresh store receives a copy of it through SQLite's backup API: the same tables, rows and
# schema revision, which MLflow then checks as usual (`_verify_schema`). Stores created by
# subprocesses (the CLI tests, sweep workers, `mlflow ui`/`server`) still migrate for real.
# LIT_MIA_TEST_MIGRATE_MLFLOW=1 turns the copy off.
_TEMPLATE: dict[str, str] = {}


def _patch_mlflow_sqlite_init() -> None:
    utils = sys.modules["mlflow.store.db.utils"]
    real = getattr(utils, "_initialize_tables", None)
    if real is None or getattr(real, "_lit_mia_template", False):
        return

    def initialize_tables(engine):
        if engine.dialect.name != "sqlite" or str(engine.url) in ("sqlite://", "sqlite:///"):
            return real(engine)  # another backend, or an in-memory database
        if "path" not in _TEMPLATE:
            import sqlalchemy

            folder = tempfile.mkdtemp(prefix="lit_mia_mlflow_template_")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            path = os.path.join(folder, "mlflow.db")
            template = sqlalchemy.create_engine(f"sqlite:///{path}")
            real(template)
            template.dispose()
            _TEMPLATE["path"] = path
        src = sqlite3.connect(_TEMPLATE["path"])
        try:
            with engine.connect() as conn:
                src.backup(conn.connection.driver_connection)
        finally:
            src.close()

    initialize_tables._lit_mia_template = True
    utils._initialize_tables = initialize_tables


def pytest_runtest_setup(item):
    """Once MLflow is imported in this process, fresh SQLite stores come from the template."""
    if "mlflow.store.db.utils" in sys.modules and not os.environ.get("LIT_MIA_TEST_MIGRATE_MLFLOW"):
        _patch_mlflow_sqlite_init()


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """A tiny two-target `lit-mia run default` (piped) in a temporary MLflow store, run once
    per session; shared by the report, browser and terminal tests (tests/tiny_study.py)."""
    from tests.tiny_study import run_tiny_study

    return run_tiny_study(tmp_path_factory.mktemp("tiny_study"))
