"""Quiet console output for the command line and its sweep workers: Lightning's per-fit banner
lines and tips, MLflow's "View run at" links and two known harmless warnings go; progress
lines, real warnings and errors stay. No heavy imports (the CLI calls it before it knows what
it will run)."""

from __future__ import annotations


def quiet_lightning() -> None:
    """Keep progress bars and warnings; drop Lightning's per-fit banner lines and tips, and
    MLflow's "View run at" emoji links (the CLI prints where the runs are once)."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")
    warnings.filterwarnings("ignore", message="Creating legend with loc")  # matplotlib
    for name in (
        "mlflow.store.db.utils",  # "Creating initial MLflow database tables..."
        "pytorch_lightning.utilities.rank_zero",
        "lightning.pytorch.utilities.rank_zero",
        "lightning_fabric.utilities.seed",
        "pytorch_lightning.accelerators.cuda",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
