"""Ranks under DDP: rank 0 writes, every other rank is inert (Run, LightningLogger)."""

from __future__ import annotations

import os

from pytorch_lightning.utilities import rank_zero_only


def is_rank_zero() -> bool:
    """Whether this process is rank 0 (always, when not distributed)."""
    return rank_zero_only.rank == 0


def env_rank() -> int:
    """Global rank from the launcher's environment (0 when not distributed)."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key])
    return 0
