"""Pure perturbation functions on (model, x, y): untargeted and targeted PGD (pgd.py,
targeted.py), Sinha's ascent (distributional.py), batched HopSkipJump (hopskipjump.py)."""

from lit_mia.perturb.distributional import sinha_linf_ascent
from lit_mia.perturb.pgd import AttackPGD, batched, pgd, pgd_args

__all__ = ["AttackPGD", "batched", "pgd", "pgd_args", "sinha_linf_ascent"]
