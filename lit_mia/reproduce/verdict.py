"""A claim's statistic, its 95% interval and its verdict, from the metrics of its runs.

    measure(claim, metrics_by_target, n, scores) -> Measurement(value, low, high)
    verdict(band, measurement)            -> REPRODUCED | NOT_REPRODUCED

Reproduced when the whole interval clears the band (above: low > value; below: high < value).
Anything else is "not reproduced", whatever the point estimate; a missing metric (the attack
did not log it) is "not reproduced" with the reason. The band is read from the claims file,
which is committed before the runs it judges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from lit_mia.reproduce import intervals as iv
from lit_mia.reproduce.claims import Band, Claim, Operand

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
NOT_RUN = "not run"  # --from-store without a stored run: nothing measured, counts as a failure


@dataclass(frozen=True)
class Measurement:
    value: float
    low: float
    high: float
    how: str  # the interval's construction, in words


def _metric(metrics: Mapping[str, Mapping[str, float]], op: Operand) -> Mapping[str, float]:
    if op.target not in metrics:
        raise KeyError(f"no results for target {op.target!r} (have {sorted(metrics)})")
    m = metrics[op.target]
    if op.key not in m:
        raise KeyError(f"{op.key} was not logged for target {op.target!r}")
    return m


Scores = Mapping[str, Mapping[str, tuple]]  # target -> attack -> (index, is_member, score)


def paired_operands(claim: Claim) -> list[tuple[str, str]]:
    """The (target, attack) score files a difference claim's paired interval reads (empty when
    the claim is no bootstrap difference of two AUCs or two TPRs at the same FPR)."""
    if claim.b is None or claim.interval != "bootstrap":
        return []
    ka, kb = iv.scored_key(claim.a.key), iv.scored_key(claim.b.key)
    if ka is None or kb is None or ka[1] != kb[1]:
        return []
    return [(claim.a.target, ka[0]), (claim.b.target, kb[0])]


def _paired(claim: Claim, scores: Scores | None) -> Measurement | str:
    """The paired measurement of a difference claim, or why there is none (the phrase the
    independent fallback names)."""
    ops = paired_operands(claim)
    if not ops or scores is None:
        return "no per-sample scores"
    (ta, na), (tb, nb) = ops
    a, b = scores.get(ta, {}).get(na), scores.get(tb, {}).get(nb)
    if a is None or b is None:
        return "no per-sample scores"
    metric = iv.scored_key(claim.a.key)[1]
    got = iv.paired_difference(metric, a, b)
    if got is None:
        return "different samples"
    d, lo, hi, n_in, n_out = got
    test = "DeLong" if metric == "auc" else "stratified bootstrap"
    return Measurement(
        d, lo, hi, f"paired ({test}) on the same {n_in} members + {n_out} non-members"
    )


def measure(
    claim: Claim,
    metrics: Mapping[str, Mapping[str, float]],
    n: int | None = None,
    scores: Scores | None = None,
) -> Measurement:
    """The claim's statistic and interval (intervals.py); KeyError when a metric is missing.
    scores: the per-sample scores of `paired_operands(claim)`; a bootstrap difference of two
    metrics on the same samples is then paired, else combined as independent."""
    ma = _metric(metrics, claim.a)
    mb = _metric(metrics, claim.b) if claim.b else None
    a = ma[claim.a.key]
    if claim.interval == "paired_z":
        assert claim.b is not None
        assert claim.z_key is not None
        d = a - mb[claim.b.key]
        z = _metric(metrics, Operand(claim.a.target, claim.z_key))[claim.z_key]
        lo, hi = iv.paired_z_interval(d, z)
        return Measurement(d, lo, hi, f"paired: d ± 1.96·|d/z|, z = {claim.z_key} = {z:.2f}")
    if claim.interval == "binomial":
        if n is None:
            raise KeyError(f"{claim.n_key} (the number of trials) was not resolved")
        if mb is None:
            return Measurement(*iv.binomial_side(a, n), f"Wilson, n = {n}")
        b = mb[claim.b.key]
        lo, hi = iv.difference_interval(a, iv.wald_se(a, n), b, iv.wald_se(b, n))
        return Measurement(a - b, lo, hi, f"Wald SEs combined as independent, n = {n} each")
    _, alo, ahi = iv.bootstrap_side(ma, claim.a.key)
    if mb is None:
        return Measurement(a, alo, ahi, "bootstrap percentile (logged)")
    b, blo, bhi = iv.bootstrap_side(mb, claim.b.key)
    paired = _paired(claim, scores)
    if isinstance(paired, Measurement):
        return paired
    se_a, se_b = iv.se_from_interval(alo, ahi), iv.se_from_interval(blo, bhi)
    lo, hi = iv.difference_interval(a, se_a, b, se_b)
    return Measurement(a - b, lo, hi, f"bootstrap SEs combined as independent ({paired})")


def verdict(band: Band, m: Measurement) -> str:
    if any(math.isnan(x) for x in (m.value, m.low, m.high)):
        return NOT_REPRODUCED
    ok = m.low > band.value if band.direction == "above" else m.high < band.value
    return REPRODUCED if ok else NOT_REPRODUCED


def reason(band: Band, m: Measurement) -> str:
    """Why a verdict is what it is, in one phrase."""
    side = m.low if band.direction == "above" else m.high
    end = "lower" if band.direction == "above" else "upper"
    if verdict(band, m) == REPRODUCED:
        return f"the interval's {end} end {side:.4f} clears the band {band.text()}"
    point_ok = m.value > band.value if band.direction == "above" else m.value < band.value
    if point_ok:
        return (f"the point estimate meets the band {band.text()} but the interval's {end} "
                f"end {side:.4f} does not: not resolved at this scale")  # fmt: skip
    return f"the point estimate {m.value:.4f} is on the wrong side of the band {band.text()}"


__all__ = [
    "NOT_REPRODUCED",
    "NOT_RUN",
    "REPRODUCED",
    "Measurement",
    "Scores",
    "measure",
    "paired_operands",
    "reason",
    "verdict",
]
