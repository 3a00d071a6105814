"""The one evaluation loop: every attack of an experiment on one context, logged to one run.

    out = dict(base)                              # the front end's own facts (target/*, ...)
    for name in attacks:
        on_attack(name)                           # e.g. the audit's fitter learns who trains
        res = ATTACKS[name].run(ctx)              # AttackResult
        res = with_slices(ctx, name, res, kind)   # attack/<name>/slice/... (membership kinds)
        tracking.log_result(run, name, res)       # metrics, scores CSV, histograms, figures
        out |= keys.attack_keys(name, res.metrics) | res.facts
    shadow/* accuracies when shadow models were trained; placebo/*: every score attack against
    shadow model 0, which never saw the evaluation members (attacks/placebo.py); ROC / PR plots
    of every scored attack; which node trained each model trained for the run
    (farm/placements.csv); every non-attack key of `out` logged once

All three front ends call `evaluate`: `lit-mia run` (run.py, `AttackContext` of a trained
target and `training.target_metrics`), `lit_mia.audit` (auditing/api.py, a user's model) and
update-leakage experiments (run_updates.py, an `UpdatesContext` over the update farm). A new
attack, metric or callback therefore lands here once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lit_mia import comparison, progress, tracking
from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.placebo import placebo_keys, wants_placebo
from lit_mia.attacks.registry import ATTACKS
from lit_mia.attacks.slices import with_slices
from lit_mia.metrics import keys
from lit_mia.models.backends import PLACEMENTS_KEY, placement_rows


@dataclass
class Evaluation:
    """What `evaluate` returns: every metric under its full key, each attack's result and its
    wall time in seconds (attack order)."""

    metrics: dict[str, float]
    results: dict[str, AttackResult] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def scored(self) -> dict[str, tuple]:
        """attack -> (index, is_member, scores) of every result with per-sample scores."""
        return {
            name: (r.index, r.is_member, r.scores)
            for name, r in self.results.items()
            if r.scores is not None and r.is_member is not None
        }


def shadow_metrics(ctx: Any) -> dict[str, float]:
    """`shadow/train_acc`, `shadow/test_acc`, `shadow/n_train` of the first shadow model, when
    the context trained any (beside target/train_acc and target/test_acc: same set sizes)."""
    if not getattr(ctx, "shadows_trained", False):
        return {}
    sh = ctx.shadow_models(1)[0]
    return {
        keys.shadow("train_acc"): sh.predictor.accuracy("members"),
        keys.shadow("test_acc"): sh.predictor.accuracy("nonmembers"),
        keys.shadow("n_train"): float(len(sh.in_idx)),
    }


def placebo_summary(placebo: Mapping[str, float]) -> str:
    """The progress line's end: `at chance`, `NOT at chance ...` or `not run (...)`."""
    if not placebo.get(keys.placebo_fact("available")):
        return "not run (no shadow model 0: data.n_shadow too small, or no shadow data)"
    return (
        "NOT at chance: see the warning"
        if placebo[keys.placebo_fact("off_chance")]
        else ("at chance")
    )


def evaluate(
    ctx: Any,
    run: tracking.Run,
    attacks: Sequence[str],
    *,
    title: str,
    base: Mapping[str, float] | None = None,
    bins: int = 50,
    roc_title: str | None = None,
    on_attack: Callable[[str], None] | None = None,
) -> Evaluation:
    """Run `attacks` on `ctx` in order and log everything to `run` (see the module docstring).

    title: the target's label in progress lines and histogram titles; roc_title: the ROC / PR
    plots' title (default `title`); base: metrics of the front end, returned and logged with
    the rest; on_attack(name): called before each attack runs."""
    out = dict(base or {})
    ev = Evaluation(out)
    curves = {}
    for name in attacks:
        entry = ATTACKS[name]
        if on_attack is not None:
            on_attack(name)
        t0 = time.perf_counter()
        with progress.task(f"attack {name} on {title}") as shown:
            res = with_slices(ctx, name, entry.run(ctx), entry.kind)
            shown.done(progress.attack_summary(res.metrics))
        ev.seconds[name] = time.perf_counter() - t0
        tracking.log_result(run, name, res, title=title, bins=bins)
        out.update(keys.attack_keys(name, res.metrics))
        out.update(res.facts)  # full keys outside attack/<name>/, logged below with the rest
        ev.results[name] = res
        if res.scores is not None:
            curves[name] = (res.scores, res.is_member)
    out.update(shadow_metrics(ctx))
    if wants_placebo(ctx, list(attacks)):
        with progress.task(f"placebo control on {title}") as shown:
            placebo = placebo_keys(ctx, list(attacks))
            shown.done(placebo_summary(placebo))
        out.update(placebo)
    placed = getattr(ctx, "shared", {}).get(PLACEMENTS_KEY)
    if placed:
        tracking.log_placements(run, placement_rows(placed))
    if curves:
        for path, fig in comparison.roc_figures(curves, roc_title or title).items():
            run.log_figure(fig, path)
    run.log_metrics(keys.not_attack(out))
    return ev


__all__ = ["Evaluation", "evaluate", "shadow_metrics"]
