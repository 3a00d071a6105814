"""The attack-time PGD settings (`AttackPGD`, extended by the `attack.*` section) and
`pgd_args`, importable without torch (lit_mia/config/ builds the schema from them before anything
imports torch; the PGD itself is in pgd.py)."""

from __future__ import annotations

from dataclasses import dataclass

from lit_mia.errors import ConfigError


def check_nonnegative(**values: float) -> None:
    """ConfigError naming the first negative attack parameter."""
    for name, value in values.items():
        if value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")


@dataclass
class AttackPGD:
    """Attack-time untargeted L_inf PGD of the CCS'19 released code
    (docs/reference/paper-defaults.md#score-based-membership-inference): eps 0.1 (Fashion-MNIST),
    20 steps of 2.5 * eps / steps (`step_size: None`), no random start.
    The `attack.*` settings of every attack that crafts adversarial examples extend it."""

    eps: float = 0.1
    steps: int = 20
    step_size: float | None = None
    random_start: bool = False

    def args(self, eps: float | None = None) -> dict:
        return pgd_args(self, eps)


def pgd_args(s, eps: float | None = None) -> dict:
    """Keyword arguments of `pgd` (eps, steps, step_size, random_start) from any object with
    AttackPGD's four fields (an `AttackPGD`, the `attack` config section); `eps` overrides
    s.eps. step_size None means 2.5 * eps / steps. Use as `pgd(model, x, y, **pgd_args(s))`."""
    e = float(s.eps if eps is None else eps)
    steps = int(s.steps)
    check_nonnegative(eps=e, steps=steps)
    step_size = s.step_size
    if step_size is None:
        step_size = 2.5 * e / steps if steps else 0.0
    return dict(eps=e, steps=steps, step_size=float(step_size), random_start=bool(s.random_start))
