"""What the sweep tests share: the smallest trial, and a sweep of n of them into a temporary
store (also used by tests/integration/test_first_hour.py)."""

from __future__ import annotations

from tests.conftest import TINY, store_uri


def tiny_args(*extra: str) -> list[str]:
    """The smallest trial: tiny data, 1 epoch, I_A only with 5 PGD steps, no calibration."""
    return [
        *TINY,
        "attacks=[ia]",
        "attack.calibrate=false",
        "trainer.max_epochs=1",
        *extra,
        "sweep.sampler=random",
    ]


def sweep_args(tmp_path, n: int, *extra: str) -> list[str]:
    """`n` smallest trials logging into the store under `tmp_path`."""
    return tiny_args(f"tracking.uri={store_uri(tmp_path)}", f"sweep.n_trials={n}", *extra)
