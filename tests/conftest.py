"""Shared test setup: one torch thread, fresh MLflow SQLite stores copied from a template, and
the one definition of what every folder's tests share (tiny overrides, MLflow read-back, the
session's tiny study). Folder-specific fixtures live in that folder's conftest.py.

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
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
pytest_plugins = ["pytester"]  # tests/helpers/test_runif.py runs a conftest hook in-process
pytest.register_assert_rewrite("tests.helpers")  # AttackTester's contract asserts

# ---------------------------------------------------------------- tiny overrides
# The smallest mnist5k run that still trains, attacks and logs every metric: 64 + 64 evaluation
# samples, a half-width LeNet, two epochs, five PGD steps. Tests add what they vary.
TINY_DATA = [
    "data.n_members=64",
    "data.n_nonmembers=64",
    "data.n_validation=32",
    "data.n_shadow=128",
    "data.batch_size=32",
]
TINY_TRAINER = [
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.val_adv_steps=2",
    "trainer.val_every_n_epochs=1",
]
TINY_NET = ["net.name=lenet_mnist", "net.width=0.5"]
TINY = [*TINY_DATA, *TINY_NET, *TINY_TRAINER, "attack.steps=5"]
# the session's tiny study (tests/helpers/tiny_study.py): one epoch, I_B only, no calibration
TINY_STUDY = [
    *TINY_DATA,
    *TINY_NET,
    "trainer.max_epochs=1",
    "trainer.val_every_n_epochs=1",
    "trainer.val_adv_steps=2",
    "attack.steps=5",
    "attack.calibrate=false",
    "attacks=ib",  # no brackets: a single name is accepted
]


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: one torch thread, the repository importable."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def store_uri(folder) -> str:
    """The MLflow SQLite store of a test folder: `sqlite:///<folder>/mlruns/mlflow.db`."""
    return f"sqlite:///{folder}/mlruns/mlflow.db"


def tiny(tmp_path, *extra: str) -> list[str]:
    """TINY logging into the store under `tmp_path`, then `extra` (later overrides win)."""
    return [*TINY, f"tracking.uri={store_uri(tmp_path)}", *extra]


def client_for(tmp_path):
    """An MLflow client on the store under `tmp_path`."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store_uri(tmp_path))


def all_runs(client):
    """Every run of every experiment `client` sees."""
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps, max_results=1000) if exps else []


def runs_of(uri: str):
    """Every run of every experiment in the MLflow store at `uri`."""
    from mlflow.tracking import MlflowClient

    return all_runs(MlflowClient(tracking_uri=uri))


# fixture -> the pytest-xdist group of the tests that use it: built once, on one worker
XDIST_GROUPS = {
    "tiny_study": "tiny_study",
    "leaking_context": "attack_contexts",
    "no_signal_context": "attack_contexts",
    "leaking_verifiable_context": "attack_contexts",
    "no_signal_verifiable_context": "attack_contexts",
    "no_signal_dp_context": "attack_contexts",
    "update_farms": "update_farms",
    "shuffled_update_farms": "update_farms",
}


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`), every test that uses one
    of the expensive session fixtures above runs on one worker, so the fixture is built once,
    not once per worker. AttackTester subclasses name their fixtures in class attributes
    (`leaking`, `no_signal`) and fetch them with `request.getfixturevalue`."""
    for item in items:
        names = list(getattr(item, "fixturenames", ()))
        cls = getattr(item, "cls", None)
        names += [getattr(cls, a) for a in ("leaking", "no_signal") if hasattr(cls, a)]
        group = next((XDIST_GROUPS[n] for n in names if n in XDIST_GROUPS), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


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
    """A test whose `RunIf` requirement CI must provide fails when it is missing there
    (tests/helpers/runif.py). Once MLflow is imported in this process, fresh SQLite stores
    come from the template."""
    for mark in item.iter_markers("runif_required"):
        pytest.fail(mark.kwargs["reason"], pytrace=False)
    if "mlflow.store.db.utils" in sys.modules and not os.environ.get("LIT_MIA_TEST_MIGRATE_MLFLOW"):
        _patch_mlflow_sqlite_init()


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """A tiny two-target `lit-mia run default` (piped) in a temporary MLflow store, run once
    per session; shared by the report, browser, progress and golden tests
    (tests/helpers/tiny_study.py)."""
    from tests.helpers.tiny_study import run_tiny_study

    return run_tiny_study(tmp_path_factory.mktemp("tiny_study"))


# ---------------------------------------------------------------- a model trained outside lit_mia
AUDIT_N = 150
AUDIT_NET = ["net.name=mlp", "net.width=0.25", "data.name=digits"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """(folder, members indices): mlp(width 0.25) fitted to AUDIT_N digits by a plain PyTorch
    loop, state dict model.pt and the member indices members.txt (one per line) in folder;
    audited by tests/auditing/test_checkpoint.py and dry-run by tests/cli/test_dry_run.py."""
    import numpy as np
    from torch import nn

    from lit_mia.data.datasets import load_dataset
    from lit_mia.nets import build_net

    d = tmp_path_factory.mktemp("ckpt")
    b = load_dataset("digits")
    members = np.random.default_rng(5).permutation(len(b))[:AUDIT_N]
    torch.manual_seed(0)
    net = build_net("mlp", b.shape, b.n_classes, b.mean, b.std, width=0.25)
    x, y = b.x[members], b.y[members]
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    torch.save(net.state_dict(), d / "model.pt")
    (d / "members.txt").write_text("# trained on\n" + "\n".join(map(str, members)) + "\n")
    return d, members
