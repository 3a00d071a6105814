"""The fixed settings of a study: what every trial shares, recorded when the study is created.

A study is one setting searched over `params`; its trials are comparable only while everything
else stays the same. `Sweep` records the flattened base-experiment config (the sweep file's
`overrides` and the command line's `key=value` applied, searched and tied keys left out) as a
study attribute when it creates the study, and a later `lit-mia sweep` on the same study with
any other value exits 2 naming each differing key. `--new-study` instead opens the study
`<study_name>-<hash of the settings>`, so each setting has its own study and nothing of one is
reported as another's.

Keys that change where results go or how they are shown, not what is measured, are left out:
`tracking.*`, `sweep.*` (`sweep.n_trials` may grow a study), `farm.*` (where models train),
progress bars, logging cadence, loader workers and the shadow cache folder.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lit_mia import config
from lit_mia.errors import ConfigError

ATTR = "fixed_settings"  # study user attr: JSON {dotted key: value as text}
IGNORED_PREFIXES = ("tracking.", "sweep.", "farm.")
IGNORED_KEYS = (
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "data.num_workers",
    "attack.lira.cache_dir",
    "description",
)
SHOWN = 6  # differing keys named in the error before "and N more"


def fixed_settings(base: Any, experiment: str, searched: list[str]) -> dict[str, str]:
    """Flat `key -> str(value)` of everything a study's trials share."""
    flat = config.flatten(base)
    keep = {
        k: v
        for k, v in flat.items()
        if not k.startswith(IGNORED_PREFIXES) and k not in IGNORED_KEYS and k not in searched
    }
    return {"sweep.experiment": experiment, **keep}


def digest(settings: dict[str, str]) -> str:
    """8 hex digits naming a setting (stable across processes and machines)."""
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def differing(recorded: dict[str, str], now: dict[str, str]) -> list[str]:
    """`key: recorded -> now` for each key whose value differs (or exists on one side only)."""
    keys = sorted(set(recorded) | set(now))
    missing = "(unset)"
    return [
        f"{k}: {recorded.get(k, missing)} -> {now.get(k, missing)}"
        for k in keys
        if recorded.get(k) != now.get(k)
    ]


def check(study, study_name: str, settings: dict[str, str]) -> None:
    """Record `settings` on a new study; refuse (ConfigError) a study created with others.

    A study created before settings were recorded gets them recorded now (its earlier trials
    cannot be checked and are taken as they are)."""
    raw = study.user_attrs.get(ATTR)
    if raw is None:
        study.set_user_attr(ATTR, json.dumps(settings, sort_keys=True))
        return
    diff = differing(json.loads(raw), settings)
    if diff:
        more = f" and {len(diff) - SHOWN} more" if len(diff) > SHOWN else ""
        raise ConfigError(
            f"study {study_name!r} was created with other fixed settings "
            f"({'; '.join(diff[:SHOWN])}{more}); its trials would be reported as this "
            f"setting's. Rerun with the study's settings, pass --new-study (study "
            f"'{study_name}-{digest(settings)}'), or set sweep.study_name=NAME"
        )
