"""The placebo control: the same attacks against a model that never saw the evaluation members.

A membership attack's AUC mixes two things: what the target memorised about its members, and
anything else that tells the member set from the non-member set (a distribution shift between
them, a split that leaks, a bug that scores the two sets differently). A *placebo* model,
trained like the target but on other data, has memorised nothing of either set, so against it
every attack must sit at chance (AUC 0.5). If it does not, the target's number is not a
measurement of membership leakage (in the spirit of a placebo arm; Carlini et al. S&P 2022
§III-B report attacks on models that did not train on the query points for the same reason).

`placebo_metrics` gives each attack's placebo AUC with a DeLong interval that is simultaneous
over the attacks (Bonferroni, metrics/delong.py) and ``chance_p``, the exact-null
(Mann–Whitney) p-value of "members and non-members are exchangeable for this model", which is
what a sound placebo satisfies. ``off_chance`` = 1.0 when min(1, k · chance_p) < 1 - level for
any of the k attacks: with a sound placebo this warns in at most 1 - level of runs, whatever
the number of attacks (DeLong's estimated variance would warn ~1.2× too often at these
Bonferroni levels with 100 + 100 samples). tests/metrics/test_placebo.py checks the rate by
simulation.
"""

from __future__ import annotations

from collections.abc import Mapping

from numpy.typing import ArrayLike

from lit_mia.metrics.delong import chance_p, simultaneous_auc_intervals
from lit_mia.metrics.roc import tpr_at_fpr

TPR_LEVEL = 0.01


def placebo_metrics(
    scores: Mapping[str, tuple[ArrayLike, ArrayLike]], level: float = 0.95
) -> tuple[dict[str, dict[str, float]], float]:
    """(per attack: ``auc``, ``auc_ci_low``, ``auc_ci_high`` (simultaneous at ``level``),
    ``auc_p``, ``auc_p_adjusted`` (DeLong), ``chance_p``, ``chance_p_adjusted`` (min(1, k·p)),
    ``tpr_at_fpr_0.01``, ``off_chance``; overall ``off_chance``) of the placebo's scores
    (attack -> (scores, is_member))."""
    sims = simultaneous_auc_intervals(scores, level)
    k = len(sims)
    out = {}
    for name, r in sims.items():
        s, m = scores[name]
        p = chance_p(s, m)
        adjusted = min(1.0, k * p)
        out[name] = {**r, "chance_p": p, "chance_p_adjusted": adjusted,
                     f"tpr_at_fpr_{TPR_LEVEL}": tpr_at_fpr(s, m, TPR_LEVEL),
                     "off_chance": float(adjusted < 1.0 - float(level))}  # fmt: skip
    return out, float(any(r["off_chance"] for r in out.values()))


__all__ = ["placebo_metrics"]
