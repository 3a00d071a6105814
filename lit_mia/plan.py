"""`lit-mia plan key=value ... [--json]`: sample sizes before any training (issue 23).

    fpr=0.001[,0.01]     TPR at these FPRs: members and non-members for the interval
      tpr=0.1              assumed TPR at the FPR (binormal ROC through it)
      half_width=0.02      target median half-width of the TPR interval
      nonmembers=N         fix the non-members (else the fewest samples in all)
    delta_auc=0.02       detect this AUC difference between two targets
      auc=0.6              the first target's AUC (the second's is auc + delta_auc)
      correlation=0        correlation of the two AUC estimates (0: independent samples)
    eps=1                certify ε >= 1: the held-out bound and the one-run canary audit
      eps_true=2           the ε the training is assumed to have (required with eps=)
      mechanism=laplace    score model: laplace, gaussian or rr
      delta=1e-5           δ of the bound
      guess_fraction=0.2   share of canaries the one-run auditor guesses
    alpha=0.05           1 - confidence of intervals and bounds, level of the ΔAUC test
    power=0.8            probability the plan reaches its goal (ΔAUC test, ε bounds)
    max_n=100000000      give up beyond this many samples per class (ε rows: at most 10⁶;
                           the one-run audit gives up beyond 10⁵ canaries)

The math is lit_mia/metrics/planning.py; how to read the table: docs/howto/plan-and-budget.md.
Bad keys or values, and asks no sample can meet, raise ConfigError (exit 2, one line).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict

from lit_mia.errors import ConfigError, did_you_mean, require
from lit_mia.metrics import planning
from lit_mia.metrics.planning import MECHANISMS, Plan

DEFAULTS: dict[str, object] = {
    "fpr": None,
    "tpr": 0.1,
    "half_width": 0.02,
    "nonmembers": None,
    "delta_auc": None,
    "auc": 0.6,
    "correlation": 0.0,
    "eps": None,
    "eps_true": None,
    "mechanism": "laplace",
    "delta": 1e-5,
    "guess_fraction": 0.2,
    "alpha": 0.05,
    "power": 0.8,
    "max_n": 10**8,
}
"""Every key of `lit-mia plan` with its default (None: not asked)."""

ASKS = ("fpr", "delta_auc", "eps")


def _number(key: str, text: str) -> float:
    t = text.strip()
    scale = 0.01 if t.endswith("%") else 1.0
    try:
        v = float(t.rstrip("%")) * scale
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{key} must be finite, got {text!r}")
    return v


def parse(items: list[str]) -> dict[str, object]:
    """The settings of `lit-mia plan` from `key=value` strings, every value range-checked."""
    got: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"cannot parse {item!r}: expected key=value")
        if key not in DEFAULTS:
            raise ConfigError(
                f"unknown plan key {key!r}{did_you_mean(key, DEFAULTS)}; valid: "
                f"{', '.join(DEFAULTS)}"
            )
        got[key] = value
    if not any(k in got for k in ASKS):
        raise ConfigError(
            "lit-mia plan needs at least one of fpr= (TPR at that FPR), delta_auc= (an AUC "
            "difference) or eps= (certify ε >= eps)"
        )
    s = dict(DEFAULTS)
    for key, value in got.items():
        if key == "mechanism":
            if value not in MECHANISMS:
                from lit_mia.errors import unknown_name

                raise unknown_name("mechanism", value, MECHANISMS)
            s[key] = value
        elif key == "fpr":
            parts = [p for p in value.strip("[]").split(",") if p.strip()]
            require(bool(parts), "fpr", "one or more numbers in (0, 1)", value)
            s[key] = [_number(key, p) for p in parts]
        elif key in ("nonmembers", "max_n"):
            v = _number(key, value)
            require(v == int(v) and v >= 10, key, "an integer >= 10", value)
            s[key] = int(v)
        else:
            s[key] = _number(key, value)
    _check(s)
    return s


def _check(s: dict) -> None:
    require(0.0 < s["alpha"] < 0.5, "alpha", "in (0, 0.5)", s["alpha"])
    require(0.5 <= s["power"] < 1.0, "power", "in [0.5, 1)", s["power"])
    for f in s["fpr"] or []:
        require(0.0 < f < 1.0, "fpr", "in (0, 1) (a false-positive rate; 0.1% = 0.001)", f)
        require(f < s["tpr"] < 1.0, "tpr", f"in (fpr={f:g}, 1): an attack above chance", s["tpr"])
    require(0.0 < s["half_width"] < 0.5, "half_width", "in (0, 0.5)", s["half_width"])
    require(0.5 <= s["auc"] < 1.0, "auc", "in [0.5, 1)", s["auc"])
    if s["delta_auc"] is not None:
        other = s["auc"] + s["delta_auc"]
        ok = s["delta_auc"] != 0 and 0.5 <= other < 1.0
        require(ok, "delta_auc", f"non-zero with auc + delta_auc in [0.5, 1) (auc={s['auc']:g})",
                s["delta_auc"])  # fmt: skip
    require(-1.0 < s["correlation"] < 1.0, "correlation", "in (-1, 1)", s["correlation"])
    require(0.0 < s["delta"] < 1.0, "delta", "in (0, 1)", s["delta"])
    require(0.0 < s["guess_fraction"] <= 1.0, "guess_fraction", "in (0, 1]", s["guess_fraction"])
    if s["eps"] is not None:
        require(s["eps"] > 0, "eps", "> 0", s["eps"])
        if s["eps_true"] is None:
            raise ConfigError("eps= needs eps_true=: the ε the training is assumed to have")
        require(
            s["eps_true"] > s["eps"],
            "eps_true",
            f"> eps={s['eps']:g} (a sound lower bound reaches eps with probability <= alpha "
            "when the true ε is not above it)",
            s["eps_true"],
        )


def plans(s: dict) -> list[Plan]:
    """The rows of the table, in the order fpr, delta_auc, eps."""
    out = []
    ci = 1.0 - s["alpha"]
    for f in s["fpr"] or []:
        out.append(planning.tpr_plan(f, s["tpr"], s["half_width"], ci, s["nonmembers"], s["max_n"]))
    if s["delta_auc"] is not None:
        out.append(
            planning.delta_auc_plan(
                s["auc"], s["delta_auc"], s["correlation"], s["alpha"], s["power"], s["max_n"]
            )
        )
    if s["eps"] is not None:
        mech = planning.check_mechanism(s["mechanism"], s["eps_true"], s["delta"])
        x, a, pw = s["eps"], s["alpha"], s["power"]
        tries = {
            "held-out bound": lambda: planning.heldout_eps_plan(
                x, mech, a, pw, min(s["max_n"], 10**6)
            ),
            "one-run audit": lambda: planning.one_run_plan(x, mech, s["guess_fraction"], a, pw),
        }
        rows, errors = [], []
        for what, make in tries.items():
            try:
                rows.append(make())
            except ConfigError as e:  # one method out of reach: say so in its row
                errors.append(e)
                rows.append(Plan(f"ε≥{x:g} {what}", None, None, None, {}, f"not reachable: {e}"))
        if len(errors) == len(tries):
            raise errors[0]
        out += rows
    return out


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _achieved(p: Plan) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in p.achieved.items())


def table(rows: list[Plan]) -> str:
    """Markdown table, one row per ask (sizes per class; ΔAUC: per target)."""
    head = "| ask | members | non-members | canaries | achieves | assumes |"
    lines = [head, "|---|---:|---:|---:|---|---|"]
    for p in rows:
        cells = [p.ask, _n(p.members), _n(p.nonmembers), _n(p.canaries), _achieved(p), p.assumes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_json(rows: list[Plan]) -> str:
    return json.dumps([asdict(p) for p in rows], indent=2, ensure_ascii=False)


def main(items: list[str], as_json: bool) -> str:
    """The text `lit-mia plan` prints."""
    rows = plans(parse(items))
    return to_json(rows) if as_json else table(rows)


__all__ = ["DEFAULTS", "main", "parse", "plans", "table", "to_json"]
