"""Test helpers that are not fixtures: training loops, the tiny study, RunIf, AttackTester."""

from tests.helpers.training import fit_tiny, small_net

__all__ = ["fit_tiny", "small_net"]
