"""Leakage budgets for CI pipelines (`--budget NAME=LIMIT`, issue 23): pure parsing and
verdicts over an audit's logged metrics (`attack/<name>/<key>`).

A budget says "the model must not leak more than LIMIT". What an audit can show differs by
metric, and the verdict says which statistic it compared:

- ``tpr@<level>``, ``auc``, ``advantage``: the *upper end* of the metric's interval
  (``tpr_at_fpr_<level>_ci_high``: the order-statistic interval of metrics/heldout.py;
  ``auc_ci_high``: the bootstrap interval; ``advantage_heldout_ci_high``: the held-out rule's
  Clopper–Pearson interval). Within budget means the interval lies at or below LIMIT: the
  audit shows the leakage is within budget at the interval's confidence. An audit too small
  to resolve the metric (wide interval) fails the budget.
- ``eps``, ``mu``: no audit bounds ε from above (it can only exhibit attacks), so the gate
  compares the *lower bounds* (``eps_lb``, and ``eps_one_run`` of the DP-SGD audit;
  ``mu_lb``) at confidence 1 - α: exceeded means ε > LIMIT is certified; within budget means
  only that it was not certified, never that ε <= LIMIT.

Every attack of the audit is compared and the worst one decides; with k attacks the joint
statement holds at confidence >= 1 - k·(1 - level) (union bound).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from lit_mia.errors import ConfigError, did_you_mean
from lit_mia.metrics import keys
from lit_mia.metrics.roc import FPR_LEVELS

UPPER = "upper"
LOWER = "lower"
FIXED = {
    "auc": (("auc_ci_high",), UPPER, (0.5, 1.0)),
    "advantage": (("advantage_heldout_ci_high",), UPPER, (0.0, 1.0)),
    "eps": (("eps_lb", "eps_one_run"), LOWER, (0.0, math.inf)),
    "mu": (("mu_lb",), LOWER, (0.0, math.inf)),
}
"""name -> (metric keys compared, statistic, allowed LIMIT range)."""


def level_name(level: float) -> str:
    """0.001 -> `tpr@0.1%`."""
    return f"tpr@{level * 100:g}%"


def budget_names() -> list[str]:
    return [*(level_name(f) for f in FPR_LEVELS), *FIXED]


@dataclass(frozen=True)
class Budget:
    name: str  # as budget_names() spells it
    keys: tuple[str, ...]
    statistic: str  # UPPER (interval's upper end) or LOWER (lower bound)
    limit: float


@dataclass(frozen=True)
class Verdict:
    budget: Budget
    value: float | None  # the worst attack's statistic (None: no attack logged it)
    attack: str | None = None
    key: str | None = None  # the metric it was read from

    @property
    def exceeded(self) -> bool:
        return self.value is not None and self.value > self.budget.limit

    def text(self) -> str:
        b = self.budget
        if self.value is None:
            return f"{b.name}: not measured (no attack logged {' or '.join(b.keys)})"
        what = "upper end" if b.statistic == UPPER else "lower bound"
        where = f"{what} {self.value:.4g} ({self.attack}: {self.key})"
        if self.exceeded:
            return f"{b.name} {where} > {b.limit:g} by {self.value - b.limit:.4g}"
        tail = "" if b.statistic == UPPER else ", not shown to exceed"
        return f"{b.name} {where} <= {b.limit:g}{tail}"


def _level(text: str) -> float | None:
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        return None


def parse_budgets(specs: list[str] | None) -> list[Budget]:
    """Budgets from `--budget` values (each may hold several, comma-separated); ConfigError
    naming the valid names and ranges otherwise."""
    out: list[Budget] = []
    valid = budget_names()
    for spec in specs or []:
        for item in (p.strip() for p in spec.split(",")):
            if not item:
                continue
            name, sep, value = item.partition("=")
            name = name.strip().lower()
            if not sep:
                raise ConfigError(
                    f"cannot parse budget {item!r}: expected NAME=LIMIT with NAME one of "
                    f"{', '.join(valid)}"
                )
            m = re.fullmatch(r"tpr@(.+)", name)
            if m:
                level = _level(m.group(1))
                match = [f for f in FPR_LEVELS if level and math.isclose(f, level, rel_tol=1e-9)]
                if not match:
                    raise ConfigError(
                        f"unknown budget {name!r}: TPR is logged at FPR "
                        f"{', '.join(level_name(f)[4:] for f in FPR_LEVELS)}; valid: "
                        f"{', '.join(valid)}"
                    )
                ks, stat, lim = (f"tpr_at_fpr_{match[0]}_ci_high",), UPPER, (0.0, 1.0)
                name = level_name(match[0])
            elif name in FIXED:
                ks, stat, lim = FIXED[name]
            else:
                raise ConfigError(f"unknown budget {name!r}{did_you_mean(name, valid)}; "
                                  f"valid: {', '.join(valid)}")  # fmt: skip
            try:
                limit = float(value)
            except ValueError:
                limit = math.nan
            if not lim[0] <= limit <= lim[1]:
                hi = "inf" if math.isinf(lim[1]) else f"{lim[1]:g}"
                raise ConfigError(
                    f"budget {name} must be a number in [{lim[0]:g}, {hi}], got {value!r}"
                )
            out.append(Budget(name, ks, stat, limit))
    return out


def verdicts(budgets: list[Budget], metrics: dict[str, float]) -> list[Verdict]:
    """Each budget against the worst attack in `metrics` (full `attack/<name>/<key>` keys)."""
    out = []
    for b in budgets:
        best: tuple[float, str, str] | None = None
        for full, value in metrics.items():
            split = keys.split_attack(full)
            if split is None or split[1] not in b.keys or math.isnan(value):
                continue
            if best is None or value > best[0]:
                best = (float(value), split[0], split[1])
        out.append(Verdict(b, None) if best is None else Verdict(b, *best))
    return out


def verdict_line(vs: list[Verdict]) -> str:
    """One line: `budget exceeded: ...` naming each failed budget and by how much, or
    `within budget: ...` with every statistic compared."""
    bad = [v for v in vs if v.exceeded]
    if bad:
        return "budget exceeded: " + "; ".join(v.text() for v in bad)
    return "within budget: " + "; ".join(v.text() for v in vs)


def unmeasured(vs: list[Verdict]) -> list[Verdict]:
    return [v for v in vs if v.value is None]


__all__ = [
    "Budget",
    "Verdict",
    "budget_names",
    "parse_budgets",
    "unmeasured",
    "verdict_line",
    "verdicts",
]
