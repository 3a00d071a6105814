"""Update leakage (Salem et al. USENIX Security'20): filled in by issue 6.

Nothing in this package imports lit_mia.attacks (its registry entries live in
lit_mia/attacks/updates.py), so either side can be imported first.
"""
