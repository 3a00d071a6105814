"""Attacks: every kind (membership, label-only, update leakage) in one registry,
attacks/registry.py. base.py: the `Attack` entry and `AttackResult`; context.py: what a
membership or label-only attack reads about one trained target."""
