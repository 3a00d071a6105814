"""Optuna sweeps over an experiment (`lit-mia sweep SWEEP [--workers N] [key=value ...]`).

The sweep layer, the only code that imports optuna (tests/test_architecture.py allows
`lit_mia.sweep` and its submodules):

- `spec.py`     sweep files: search space, objectives (validation split only), settings
- `storage.py`  study storage (SQLite, PostgreSQL via psycopg 3), heartbeats, dead-worker reaper
- `study.py`    launcher and worker loop: total trial budget, per-worker seeds, no duplicates
- `worker.py`   the worker process entry point of `--workers N`
- `pareto.py`   Pareto fronts of multi-objective studies (table, 2-D projections)
- `pgserver.py` a local PostgreSQL server for studies and tracking (`make db`, tests)

CLI overrides starting with `sweep.` set the sweep; all others go to the base experiment.
Names are imported lazily, so `python -m lit_mia.sweep.pgserver` starts without torch.
"""

from __future__ import annotations

from typing import Any

_FROM = {
    "Objective": "spec",
    "ParamSpec": "spec",
    "SweepSettings": "spec",
    "SweepSpec": "spec",
    "check_objectives": "spec",
    "_check_objectives": "spec",  # the name tests/config/test_loading.py uses
    "load_spec": "spec",
    "run_sweep": "study",
    "summary_table": "study",
}
__all__ = [n for n in _FROM if not n.startswith("_")]


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module 'lit_mia.sweep' has no attribute {name!r}")
    if _FROM[name] == "spec":
        from lit_mia.sweep import spec as mod
    else:
        from lit_mia.sweep import study as mod
    return getattr(mod, name.lstrip("_"))
