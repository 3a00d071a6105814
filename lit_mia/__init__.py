"""lit_mia: membership inference and update leakage against robustly trained models."""

__version__ = "0.1.0"
