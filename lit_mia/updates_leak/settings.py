"""Settings of the update-leakage experiments (top-level key `updates.`): Salem et al.
USENIX Security'20 (Updates-Leak); defaults from ../shared/REFERENCE.md §4.

Plain dataclasses (no lit_mia imports) so config.py can embed them in the schema.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class UpdatesSettings:
    m_shadow: int = 2000
    m_target: int = 500
    k: int = 1  # update-set size (1: single-sample attacks)
    n_probe: int = 100
    base_size: int = 1000
    base_epochs: int = 25
    update_optimizer: str = "sgd"
    update_lr: float = 1e-3
    update_momentum: float = 0.9
    update_batch_size: int = 64
    cache_dir: str = "mlruns/cache/updates"


__all__ = ["UpdatesSettings"]
