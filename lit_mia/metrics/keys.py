"""Every metric key lit_mia logs, built here and only here.

    attack/<name>/<metric>       one attack's result (AttackResult.metrics), its baselines,
                                 CIs (`<metric>_ci_low`, `<metric>_ci_high`), slices
                                 (`slice/<kind>/...`) and series (stepped by list position)
    target/<metric>              the target's own accuracies (train, test, adv_*, ver_*)
    shadow/<metric>              the first shadow model's accuracies, beside target/*
    updates/<name>/<metric>      an update-leakage attack model's epoch selection
    updates/k<k>/<metric>        facts of the update farm of set size k
    updates/<metric>             other facts of an update-leakage run (wall times)

Readers (report tables, the HTML report, sweep objectives, `AuditResult`) parse keys with
`split_attack` and test them with `is_attack`, so a renamed prefix changes this file only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ATTACK = "attack"
TARGET = "target"
SHADOW = "shadow"
UPDATES = "updates"


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


def not_attack(metrics: Mapping[str, float]) -> dict[str, float]:
    """The keys of `metrics` that are not an attack's (logged once, by the evaluation loop)."""
    return {k: v for k, v in metrics.items() if not is_attack(k)}


__all__ = [
    "attack",
    "attack_keys",
    "attack_names",
    "attack_prefix",
    "is_attack",
    "not_attack",
    "shadow",
    "split_attack",
    "target",
    "updates",
    "updates_attack_prefix",
    "updates_farm",
]
