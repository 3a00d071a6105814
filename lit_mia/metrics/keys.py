"""Every metric key lit_mia logs, built here and only here.

    attack/<name>/<metric>       one attack's result (AttackResult.metrics), its baselines,
                                 CIs (`<metric>_ci_low`, `<metric>_ci_high`), slices
                                 (`slice/<kind>/...`) and series (stepped by list position)
    target/<metric>              the target's own accuracies (train, test, adv_*, ver_*)
    shadow/<metric>              the first shadow model's accuracies, beside target/*
    updates/<name>/<metric>      an update-leakage attack model's epoch selection
    updates/k<k>/<metric>        facts of the update farm of set size k
    updates/<metric>             other facts of an update-leakage run (wall times)
    placebo/<name>/<metric>      attack <name> against the placebo model (shadow model 0, never
                                 trained on the evaluation members: metrics/placebo.py)
    placebo/<metric>             facts of the placebo control (`off_chance`, `available`)
    compare/<b>/<a>/<name>/<metric>  paired comparison of target b against reference target a
                                 on attack <name> (parent run of a multi-target experiment;
                                 metrics/paired.py); labels with `/` replaced by `_`

Readers (report tables, the HTML report, sweep objectives, `AuditResult`) parse keys with
`split_attack` and test them with `is_attack`, so a renamed prefix changes this file only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

ATTACK = "attack"
TARGET = "target"
SHADOW = "shadow"
UPDATES = "updates"
PLACEBO = "placebo"
COMPARE = "compare"


def attack(name: str, metric: str) -> str:
    """`attack/<name>/<metric>`."""
    return f"{ATTACK}/{name}/{metric}"


def attack_prefix(name: str) -> str:
    """`attack/<name>/`: the prefix of every key of one attack."""
    return f"{ATTACK}/{name}/"


def attack_keys(name: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """One attack's metrics under their full keys."""
    return {attack(name, k): v for k, v in metrics.items()}


def is_attack(key: str) -> bool:
    """Whether `key` belongs to an attack (`attack/...`)."""
    return key.startswith(ATTACK + "/")


def split_attack(key: str) -> tuple[str, str] | None:
    """`attack/<name>/<metric>` -> (name, metric); None for any other key."""
    parts = key.split("/", 2)
    if len(parts) < 3 or parts[0] != ATTACK:
        return None
    return parts[1], parts[2]


def attack_names(keys: Iterable[str]) -> set[str]:
    """The attacks that have at least one key in `keys`."""
    return {s[0] for s in map(split_attack, keys) if s is not None}


def target(metric: str) -> str:
    """`target/<metric>`."""
    return f"{TARGET}/{metric}"


def shadow(metric: str) -> str:
    """`shadow/<metric>`."""
    return f"{SHADOW}/{metric}"


def updates(metric: str) -> str:
    """`updates/<metric>`: a fact of an update-leakage run."""
    return f"{UPDATES}/{metric}"


def updates_farm(k: int, metric: str) -> str:
    """`updates/k<k>/<metric>`: a fact of the update farm of set size k."""
    return f"{UPDATES}/k{k}/{metric}"


def updates_attack_prefix(name: str) -> str:
    """`updates/<name>/`: an update-leakage attack model's training curves and selection."""
    return f"{UPDATES}/{name}/"


def label(text: str) -> str:
    """A target label as an MLflow-legal key part: `pgd ratio=0.5` -> `pgd ratio_0.5`."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", text)


def placebo(name: str, metric: str) -> str:
    """`placebo/<name>/<metric>`: attack <name> against the placebo model."""
    return f"{PLACEBO}/{name}/{metric}"


def placebo_fact(metric: str) -> str:
    """`placebo/<metric>`: a fact of the whole placebo control (`off_chance`, `available`)."""
    return f"{PLACEBO}/{metric}"


def split_placebo(key: str) -> tuple[str, str] | None:
    """`placebo/<name>/<metric>` -> (name, metric); None for any other key."""
    parts = key.split("/")
    return (parts[1], parts[2]) if len(parts) == 3 and parts[0] == PLACEBO else None


def compare(target: str, reference: str, name: str, metric: str) -> str:
    """`compare/<target>/<reference>/<name>/<metric>`: target against reference on attack name
    (labels through `label`, `/` replaced so the key splits back)."""
    t, r = (label(x).replace("/", "_") for x in (target, reference))
    return f"{COMPARE}/{t}/{r}/{name}/{metric}"


def split_compare(key: str) -> tuple[str, str, str, str] | None:
    """`compare/<target>/<reference>/<name>/<metric>` -> its four parts; None otherwise."""
    parts = key.split("/")
    if len(parts) != 5 or parts[0] != COMPARE:
        return None
    return parts[1], parts[2], parts[3], parts[4]


def not_attack(metrics: Mapping[str, float]) -> dict[str, float]:
    """The keys of `metrics` that are not an attack's (logged once, by the evaluation loop)."""
    return {k: v for k, v in metrics.items() if not is_attack(k)}


__all__ = [
    "attack",
    "attack_keys",
    "attack_names",
    "attack_prefix",
    "compare",
    "is_attack",
    "label",
    "not_attack",
    "placebo",
    "placebo_fact",
    "shadow",
    "split_attack",
    "split_compare",
    "split_placebo",
    "target",
    "updates",
    "updates_attack_prefix",
    "updates_farm",
]
