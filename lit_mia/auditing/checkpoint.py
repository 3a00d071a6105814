"""`lit-mia audit CHECKPOINT key=value ... members=FILE [nonmembers=FILE]`: audit a state dict
of a registered net (`net.*`), trained outside lit_mia, on a registered dataset (`data.*`).

    cfg        conf/experiment/audit.yaml + the overrides (net, data, attacks, attack.*, ...)
    members    the dataset indices the model was trained on (FILE: integers separated by
               spaces, commas or newlines, `#` comments; or a .npy / .json array)
    nonmembers indices it never saw; default: a seeded draw of as many as the members (or
               data.n_nonmembers when given) from the other indices, all of which must be
               unseen by the model
    shadow     the remaining indices (at most data.n_shadow when given), for shadow models
               trained like the target with lit_mia's recipe (`target.*`, `trainer.*`)

The checkpoint is loaded with torch.load(weights_only=True): a net's state dict, a target
module's (`net.` prefix) or a Lightning checkpoint's `state_dict`; keys and shapes must match
`net.*` built for the dataset, else a one-line error names the keys that differ. Everything
is checked before the MLflow run starts; the run is a `lit-mia run` target run
(run.evaluate) with the split logged and the checkpoint path as tag `lit_mia.checkpoint`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from lit_mia import config, run, tracking, training
from lit_mia.attacks.context import AttackContext
from lit_mia.data.datasets import DatasetBundle, load_dataset
from lit_mia.data.splits import MembershipSplit
from lit_mia.errors import ConfigError
from lit_mia.targets import build_target
from lit_mia.targets.base import TargetModule
from lit_mia.tracking import TargetResult
from lit_mia.weights_file import load_weights

EXPERIMENT = "audit"
FILE_KEYS = ("members", "nonmembers")


def read_indices(path: str, what: str, n_total: int, dataset: str) -> np.ndarray:
    """Unique int64 indices in [0, n_total) from a text, .npy or .json file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what}={path!r}: no such file (a file of dataset indices)")
    try:
        if p.suffix == ".npy":
            raw = np.load(p, allow_pickle=False).reshape(-1)
        elif p.suffix == ".json":
            raw = np.asarray(json.loads(p.read_text()), dtype=object).reshape(-1)
        else:
            lines = [ln.split("#", 1)[0] for ln in p.read_text().splitlines()]
            raw = np.asarray(" ".join(lines).replace(",", " ").split(), dtype=object)
        idx = np.array([int(str(v)) for v in raw], dtype=np.int64)
    except (ValueError, TypeError, OSError) as e:
        raise ConfigError(f"{what} file {path!r}: not a list of integer indices ({e})") from None
    if idx.size == 0:
        raise ConfigError(f"{what} file {path!r} holds no indices")
    bad = idx[(idx < 0) | (idx >= n_total)]
    if bad.size:
        raise ConfigError(
            f"{what} file {path!r}: {bad.size} indices out of range [0, {n_total}) of dataset "
            f"{dataset} (e.g. {bad[:5].tolist()})"
        )
    uniq, counts = np.unique(idx, return_counts=True)
    if uniq.size != idx.size:
        raise ConfigError(f"{what} file {path!r} repeats indices {uniq[counts > 1][:5].tolist()}")
    return idx


def load_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """The net's state dict from `path` (weights only; see the module docstring)."""
    state = load_weights(path, "checkpoint")  # says what is wrong with a bad file
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a Lightning checkpoint
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"checkpoint {path!r} is not a state dict (name -> tensor)")
    if state and all(k.startswith("net.") for k in state):
        state = {k[len("net.") :]: v for k, v in state.items()}  # a TargetModule's
    return state


def check_state(net: torch.nn.Module, state: dict, path: str, cfg) -> None:
    """ConfigError naming the keys (and shapes) where `state` and `net` differ."""
    want = net.state_dict()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    shapes = [
        f"{k} {list(state[k].shape)} vs {list(want[k].shape)}"
        for k in want
        if k in state and state[k].shape != want[k].shape
    ]
    if missing or extra or shapes:
        n = cfg.net
        parts = [
            f"missing keys {missing[:5]}" if missing else "",
            f"unexpected keys {extra[:5]}" if extra else "",
            f"shapes differ (checkpoint vs net) {shapes[:3]}" if shapes else "",
        ]
        raise ConfigError(
            f"checkpoint {path!r} does not match net {n.name} (width={n.width}, depth={n.depth}) "
            f"on {cfg.data.name}: " + "; ".join(p for p in parts if p)
        )


def _split(cfg0, files: dict[str, str], n_total: int, user_keys: set[str]) -> MembershipSplit:
    name = str(cfg0.data.name)
    members = read_indices(files["members"], "members", n_total, name)
    rest = np.setdiff1d(np.arange(n_total), members)
    rest = rest[np.random.default_rng(int(cfg0.seed)).permutation(rest.size)]
    if "nonmembers" in files:
        nonmembers = read_indices(files["nonmembers"], "nonmembers", n_total, name)
        common = np.intersect1d(members, nonmembers)
        if common.size:
            raise ConfigError(
                f"members and nonmembers files overlap in {common.size} indices "
                f"(e.g. {common[:5].tolist()}); they must be disjoint"
            )
        rest = rest[~np.isin(rest, nonmembers)]
    else:
        n = int(cfg0.data.n_nonmembers) if "data.n_nonmembers" in user_keys else members.size
        if rest.size < 1:
            raise ConfigError(f"members file lists all {n_total} samples: none left to compare")
        nonmembers, rest = rest[:n], rest[n:]
    n_shadow = int(cfg0.data.n_shadow) if "data.n_shadow" in user_keys else rest.size
    empty = np.array([], dtype=np.int64)
    return MembershipSplit(
        members, empty, nonmembers, np.sort(rest[:n_shadow]), empty, int(cfg0.seed), n_total
    )


@dataclass
class Prepared:
    """A checkpoint audit with every check done, ready to run (`--dry-run` stops here)."""

    cfg: DictConfig
    bundle: DatasetBundle
    split: MembershipSplit
    target: TargetModule


def prepare(checkpoint: str, overrides: list[str]) -> Prepared:
    """The resolved config, data, split and loaded target of an audit; every ConfigError (a
    missing or malformed file, a state dict that does not match the net, an unusable trainer)
    comes from here, before any MLflow run exists."""
    files = {}
    rest = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.strip() in FILE_KEYS:
            files[key.strip()] = value
        else:
            rest.append(item)
    if "members" not in files:
        raise ConfigError("lit-mia audit needs members=FILE: the dataset indices it trained on")
    user_keys = {k for k, _ in config.parse_overrides(rest)}
    cfg0 = config.load(EXPERIMENT, rest)
    d = cfg0.data
    bundle = load_dataset(d.name, root=d.root, download=d.download)
    split = _split(cfg0, files, len(bundle), user_keys)
    sizes = [
        f"data.n_members={split.members.size}",
        f"data.n_nonmembers={split.nonmembers.size}",
        "data.n_validation=0",
        f"data.n_shadow={split.shadow.size}",
        "data.n_probe=0",
    ]
    cfg = config.load(EXPERIMENT, [*rest, *sizes])
    net = training.make_net(cfg, bundle)
    state = load_checkpoint(checkpoint)
    check_state(net, state, checkpoint, cfg)
    target = build_target(cfg, net)
    target.net.load_state_dict(state)
    target.eval()
    if run.shadows_to_train(cfg, split):
        training.check_trainer(cfg)
    return Prepared(cfg, bundle, split, target)


def audit_checkpoint(
    checkpoint: str, overrides: list[str], check=None
) -> tuple[TargetResult, object]:
    """Audit the checkpoint (see the module docstring); returns (result, resolved config).
    ``check(cfg)``, when given, runs after every other check and before the MLflow run (the
    CLI's `--budget` checks)."""
    p = prepare(checkpoint, overrides)
    cfg, split = p.cfg, p.split
    if check is not None:
        check(cfg)
    label = f"audit/{Path(checkpoint).stem}"
    tags = {
        "lit_mia.experiment": EXPERIMENT,
        "lit_mia.target": str(cfg.target.name),
        "lit_mia.label": label,
        "lit_mia.checkpoint": str(Path(checkpoint).resolve()),
        "seed": str(cfg.seed),
    }
    with tracking.tracked_run(cfg, label, tags) as r:
        r.log_dict(split.to_dict(), "split/indices.json")
        r.log_dict(split.sizes(), "split/sizes.json")
        ctx = AttackContext.build(cfg, p.bundle, split, p.target)
        ctx.shadow_models(run.shadows_to_train(cfg, split))
        ev = run.evaluate(ctx, r)
    return TargetResult(label, r.run_id, ev.metrics, ev.scored()), cfg


__all__ = [
    "Prepared",
    "audit_checkpoint",
    "check_state",
    "load_checkpoint",
    "prepare",
    "read_indices",
]
