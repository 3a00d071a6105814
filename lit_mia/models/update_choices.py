"""The choices of the update farm (Salem et al. USENIX Security'20, §3), without torch: the
config checks of the update-leakage attacks (attacks/update_leakage/validation.py) and the farm
itself (update_deltas.py, update_farm.py) read the same tuples."""

from __future__ import annotations

UPDATE_OPTIMIZERS = ("sgd", "adam")
"""updates.update_optimizer: the optimiser of one model update."""
PROBE_MODES = ("loop", "vmap", "delta")
"""updates.probe_mode: how the probe posteriors of the updated models are computed."""
FARM_DTYPES = ("float64", "float32")
"""updates.farm_dtype: the precision of the update step and the probe forward."""

__all__ = ["FARM_DTYPES", "PROBE_MODES", "UPDATE_OPTIMIZERS"]
