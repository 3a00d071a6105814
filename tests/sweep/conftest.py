"""What the sweep tests share: the smallest trial."""

from __future__ import annotations

from tests.conftest import TINY


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
