"""`AttackTester`: the contract every registered attack is tested against (after torchmetrics'
`MetricTester`: one base class, one subclass per attack in that attack's test file).

A subclass names the attack, the fixtures it runs on and its headline statistic; the base
class runs the attack once per fixture (results are cached per test session) and checks:

1. **It beats its strongest trivial baseline on a leaking fixture.** Membership and label-only
   attacks: the AUC is above the Yeom et al. (CSF 2018, §3.2) gap attack's AUC on the same
   fixture (`baseline`, member iff correctly classified: what a trivial adversary gets from
   the generalisation gap), and its bootstrap interval lies above chance. Update-leakage
   attacks: their statistic beats every trivial baseline they log beside it (majority label,
   class means, random draws; Salem et al., USENIX Security 2020, §4-5) by `margin`.
2. **It sits at chance without signal.** On a fixture with nothing to learn (a target that
   never saw the evaluation members, or shuffled update deltas), the AUC interval contains
   chance, or the statistic does not beat the strongest baseline by more than `noise`.
3. **Its metric keys are well formed.** Every key is a lower-case path of `[a-z0-9_.]`
   segments; logged as `lit_mia.metrics.keys.attack(name, key)` it round-trips through
   `keys.split_attack` and passes MLflow's own metric-name validation; every value is a real
   number (not a bool); every `<m>_ci_low` has its `<m>_ci_high` and the two are ordered.

Subclasses override `leaking` / `no_signal` (fixture names), `statistic`, `higher_is_better`,
`baselines` (keys of baselines the attack logs itself), `baseline_statistic` (the gap
attack's key to compare with, when the statistic is not one the gap attack logs), `trivial`
(the value a trivial adversary gets, e.g. ε̂ = 0 for an audit), `margin`, `noise` (the
allowed distance from chance where no interval is logged) and `nan_ok`. The fixtures live
in the test folders' conftest.py files.
"""

from __future__ import annotations

import math
import re
from typing import ClassVar

_RESULTS: dict[tuple[str, str], object] = {}
KEY = re.compile(r"^[a-z0-9_.]+(/[a-z0-9_.]+)*$")


class AttackTester:
    """Base class of the per-attack contract tests (see the module docstring)."""

    attack: ClassVar[str]
    leaking: ClassVar[str] = "leaking_context"
    no_signal: ClassVar[str] = "no_signal_context"
    statistic: ClassVar[str] = "auc"
    higher_is_better: ClassVar[bool] = True
    chance: ClassVar[float] = 0.5
    baselines: ClassVar[tuple[str, ...]] = ()  # baseline keys the attack logs itself
    baseline_statistic: ClassVar[str | None] = None  # the gap attack's key (default statistic)
    trivial: ClassVar[float | None] = None  # what a trivial adversary certifies (eps: 0)
    # by how much it must beat the strongest baseline, and how far past it it may sit without
    # signal: absolute for higher-is-better statistics, fractions of the baseline for
    # lower-is-better ones (errors scale with the data)
    margin: ClassVar[float] = 0.0
    noise: ClassVar[float] = 0.0
    nan_ok: ClassVar[tuple[str, ...]] = ()  # keys that may be NaN (undefined on a fixture)

    # ------------------------------------------------------------ running
    def run_attack(self, ctx):
        """The attack's AttackResult on `ctx` (the registry entry's run)."""
        from lit_mia.attacks.registry import ATTACKS

        return ATTACKS[self.attack].run(ctx)

    def result(self, request, fixture: str):
        """The attack's result on the fixture named `fixture`, computed once per session."""
        key = (self.attack, fixture)
        if key not in _RESULTS:
            _RESULTS[key] = self.run_attack(request.getfixturevalue(fixture))
        return _RESULTS[key]

    def baseline_value(self, request, fixture: str, metrics) -> float:
        """The strongest trivial baseline's value of `statistic` on `fixture`: the best of the
        logged `baselines`, or for an attack without any, the best of chance and the gap
        attack (`baseline`) on the same fixture."""
        if self.baselines:
            values = [float(metrics[k]) for k in self.baselines]
            return max(values) if self.higher_is_better else min(values)
        if self.trivial is not None:
            return self.trivial
        if self.attack == "baseline":
            return self.chance
        gap = _BaselineTester().result(request, fixture).metrics
        return max(self.chance, float(gap[self.baseline_statistic or self.statistic]))

    def _beats(self, value: float, base: float, by: float) -> bool:
        """`value` better than `base` by `by`: absolute for a higher-is-better statistic
        (accuracies, AUCs), a fraction of `base` for a lower-is-better one (MSE, KL)."""
        return value > base + by if self.higher_is_better else value < base * (1 - by)

    # ------------------------------------------------------------ the contract
    def test_beats_its_strongest_trivial_baseline(self, request):
        m = self.result(request, self.leaking).metrics
        value, base = float(m[self.statistic]), self.baseline_value(request, self.leaking, m)
        assert self._beats(value, base, self.margin), (self.attack, self.statistic, value, base)
        low = m.get(f"{self.statistic}_ci_low")
        if low is not None and not self.baselines:
            assert low > self.chance, (self.attack, "interval reaches chance", low)

    def test_sits_at_chance_without_signal(self, request):
        m = self.result(request, self.no_signal).metrics
        value = float(m[self.statistic])
        if self.baselines:
            base = self.baseline_value(request, self.no_signal, m)
            assert not self._beats(value, base, self.noise), (self.attack, value, base)
            return
        if f"{self.statistic}_ci_low" in m:
            lo, hi = m[f"{self.statistic}_ci_low"], m[f"{self.statistic}_ci_high"]
            assert lo <= self.chance <= hi, (self.attack, value, lo, hi)
        else:  # no interval logged: within `noise` of chance (or of the trivial value)
            at = self.chance if self.trivial is None else self.trivial
            assert abs(value - at) <= self.noise, (self.attack, value, at, self.noise)

    def test_metric_keys_are_well_formed(self, request):
        from mlflow.utils.validation import _validate_metric_name

        from lit_mia.metrics import keys

        m = self.result(request, self.leaking).metrics
        assert m, self.attack
        assert self.statistic in m, (self.attack, sorted(m))
        for k in self.baselines:
            assert k in m, (self.attack, k)
        for k, v in m.items():
            assert KEY.match(k), (self.attack, k)
            full = keys.attack(self.attack, k)
            assert keys.split_attack(full) == (self.attack, k)
            _validate_metric_name(full)
            assert not isinstance(v, bool), (k, v)
            assert isinstance(float(v), float), (k, v)
            assert math.isfinite(float(v)) or k in self.nan_ok, (self.attack, k, v)
            if k.endswith("_ci_low"):
                high = m[k[: -len("low")] + "high"]
                if math.isfinite(float(v)) and math.isfinite(float(high)):
                    assert float(v) <= float(high), (self.attack, k, v, high)


class _BaselineTester(AttackTester):
    """The gap attack on the same fixtures: the trivial baseline of every membership attack."""

    attack = "baseline"


__all__ = ["KEY", "AttackTester"]
