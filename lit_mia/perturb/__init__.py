"""Pure perturbation functions on (model, x, y): PGD, later HopSkipJump."""

from lit_mia.perturb.pgd import batched, pgd, pgd_defaults_attack

__all__ = ["batched", "pgd", "pgd_defaults_attack"]
