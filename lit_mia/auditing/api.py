"""`lit_mia.audit`: membership-inference audit of a model the user already trained.

    result = lit_mia.audit(model, members=(x_in, y_in), nonmembers=(x_out, y_out),
                           attacks=["ib", "lira"], shadow_data=(x_s, y_s), train_fn=train,
                           tracking_uri="mlruns")
    print(result.table())            # one row per attack: AUC [bootstrap CI], TPR at FPR, ...
    result.scores["ib"]["score"]     # per-sample scores (members first, then non-members)

The same attack code as `lit-mia run` (attacks/registry.py on an `AttackContext`, score
attacks through attacks/scoring.py, metrics with bootstrap CIs, `tracking.log_result`), on:

- the target: `model`, any nn.Module mapping x [B, *shape] in [0, 1] to logits [B, K], in eval
  mode during the audit (its mode is restored afterwards);
- the evaluation sets: `members` (the model's training points) and `nonmembers` (points it
  never saw, same distribution), equal numbers of each are scored (`attack.n_eval` caps them);
- shadow/reference models, for the attacks that need them (calibrated thresholds
  `attack.calibrate`, `shadow`, `lira`, `rmia`): trained on `shadow_data` (disjoint from both sets;
  LiRA's online pool also takes the evaluation points, Carlini et al. S&P 2022 §IV) by the
  user's recipe, `train_fn(x, y, seed=...) -> nn.Module` or `module_factory() ->
  LightningModule` (trained for trainer.max_epochs on (x, y) batches). Without either, those
  attacks are refused before anything runs, and thresholds are oracle-only (`attack.calibrate`
  defaults to whether shadow models can be trained). LiRA's shadow cache is off (the key
  cannot see train_fn) unless `attack.lira.cache_dir` is set.

`overrides` are `key=value` strings of the experiment schema (`attack.bootstrap=1000`,
`attack.lira.n_shadow=8`, `trainer.max_epochs=5`), checked like CLI overrides. The MLflow run
(`tracking_uri`, experiment `experiment`) holds the config, metrics `attack/<name>/...`,
`target/train_acc` / `target/test_acc`, per-sample `scores/<name>.csv`, histograms and ROC/PR
plots; bad input is a ConfigError before the run starts, and a failure inside ends it FAILED.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lit_mia import config, evaluation, tracking
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.registry import ATTACKS
from lit_mia.auditing import inputs
from lit_mia.auditing.result import AuditResult
from lit_mia.errors import ConfigError, unknown_name
from lit_mia.metrics import keys

TRAINS_LIKE_TARGET = ("lira", "rmia", "ref_budget")
"""Attacks that train models through `ctx.fit` beyond `Attack.shadows` (reference models)."""
LIT_MIA_TRAINING = ("dp_audit",)
"""Attacks that retrain the target with lit_mia's own regime (not an external model's)."""
EXTERNAL = "external"
"""`target.name` / `net.name` of an audited model: trained outside lit_mia, by the user."""


def _config(
    attacks: Sequence[str],
    sizes: dict[str, int],
    overrides: Sequence[str] | dict | None,
    can_train: bool,
    seed: int,
    tracking_uri: str | None,
    experiment: str,
) -> DictConfig:
    """The resolved experiment config of an audit (schema defaults, the audit's facts, then
    the user's overrides), validated like a CLI run's."""
    if isinstance(attacks, str):
        attacks = [attacks]
    for name in attacks:
        if name not in ATTACKS:
            raise unknown_name("attack (in attacks)", name, ATTACKS)
    own = [a for a in attacks if a in LIT_MIA_TRAINING]
    if own:
        raise ConfigError(
            f"attacks {own} retrain the target with lit_mia's own regime (target.*), which a "
            f"model trained elsewhere does not have: use lit-mia run, or leave them out"
        )
    if isinstance(overrides, dict):
        user = OmegaConf.create(overrides)
    else:
        user = config._dotlist(config.parse_overrides(list(overrides or [])))
    cfg = OmegaConf.structured(config.schema("natural"))
    facts: dict[str, Any] = {
        "name": "audit",
        "seed": int(seed),
        "attacks": list(attacks),
        "tracking": {"experiment": experiment},
        "data": {
            "name": "audit",
            "n_members": sizes["members"],
            "n_nonmembers": sizes["nonmembers"],
            "n_validation": 0,
            "n_shadow": sizes.get("shadow_data", 0),
        },
        "attack": {
            "calibrate": can_train and sizes.get("shadow_data", 0) >= 2,
            "lira": {"cache_dir": ""},
        },
    }
    if tracking_uri is not None:
        facts["tracking"]["uri"] = str(tracking_uri)
    cfg = config._merge(cfg, facts, "lit_mia.audit")
    cfg = config._merge(cfg, user, "lit_mia.audit overrides")
    for key in ("data.n_members", "data.n_nonmembers", "data.n_shadow", "data.name"):
        if OmegaConf.select(user, key) is not None:
            raise ConfigError(f"{key} is set by the data given to lit_mia.audit; do not override")
    config.validate(cfg)
    return cfg


def _check_training(cfg: DictConfig, can_train: bool, train_fn, split) -> None:
    """Refuse, before any run, attacks that need models the user gave no recipe for."""
    if "transfer" in cfg.attacks and not OmegaConf.select(cfg, "attack.transfer.net"):
        raise ConfigError(
            "attack transfer trains its own net from the zoo: set attack.transfer.net=<a net "
            "name of lit-mia list> in overrides"
        )
    needs = [a for a in cfg.attacks if ATTACKS[a].shadows(cfg) > 0 or a in TRAINS_LIKE_TARGET]
    if needs and not can_train:
        why = " (attack.calibrate=true)" if cfg.attack.calibrate else ""
        raise ConfigError(
            f"attacks {needs}{why} need shadow/reference models trained like yours: pass "
            f"train_fn=(x, y, seed) -> nn.Module or module_factory=() -> LightningModule to "
            f"lit_mia.audit (and shadow_data=(x, y) for shadow models)"
        )
    n_sh = max((ATTACKS[a].shadows(cfg) for a in cfg.attacks), default=0)
    n_in, n_out = len(split.members), min(len(split.members), len(split.nonmembers))
    if n_sh and len(split.shadow) < n_in + n_out:
        raise ConfigError(
            f"shadow_data holds {len(split.shadow)} samples; shadow models trained like yours "
            f"need {n_in} training points (as many as members) plus {n_out} held out: pass "
            f"shadow_data with >= {n_in + n_out} samples"
        )
    if train_fn is not None and not inputs.accepts(train_fn, "seed"):
        raise ConfigError("train_fn must accept a keyword argument seed: train_fn(x, y, seed)")
    lira_epochs = OmegaConf.select(cfg, "attack.lira.epochs")
    same = lira_epochs is None or int(lira_epochs) == int(cfg.trainer.max_epochs)
    lira_own_epochs = "lira" in cfg.attacks and not same and train_fn is not None
    if lira_own_epochs and not inputs.accepts(train_fn, "epochs"):
        raise ConfigError("attack.lira.epochs is set: train_fn must accept epochs=")


def _n_classes(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        dev = next(model.parameters()).device
        out = model(x[:2].to(dev))
    if out.ndim != 2 or out.shape[0] != min(2, len(x)):
        raise ConfigError(f"model must return logits [B, K] for x [B, ...], got {tuple(out.shape)}")
    return int(out.shape[1])


def audit(
    model: nn.Module,
    members: Any,
    nonmembers: Any,
    attacks: Sequence[str] = ("ib",),
    shadow_data: Any = None,
    train_fn: Callable[..., nn.Module] | None = None,
    module_factory: Callable[[], pl.LightningModule] | None = None,
    tracking_uri: str | None = None,
    experiment: str = "audit",
    overrides: Sequence[str] | dict | None = None,
    seed: int = 0,
    run_name: str | None = None,
) -> AuditResult:
    """Run `attacks` against `model` on `members` vs `nonmembers`; log to MLflow; return the
    metric table and per-sample scores (see the module docstring)."""
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        raise ConfigError("model must be a torch nn.Module with parameters, returning logits")
    parts = {
        "members": inputs.as_arrays(members, "members"),
        "nonmembers": inputs.as_arrays(nonmembers, "nonmembers"),
    }
    if shadow_data is not None:
        parts["shadow_data"] = inputs.as_arrays(shadow_data, "shadow_data")
    was_training = model.training
    model.eval()
    try:
        n_classes = _n_classes(model, parts["members"][0])
        can_train = train_fn is not None or module_factory is not None
        sizes = {k: len(v[1]) for k, v in parts.items()}
        cfg = _config(attacks, sizes, overrides, can_train, seed, tracking_uri, experiment)
        bundle, split, shape = inputs.pooled(parts, n_classes, int(seed))
        _check_training(cfg, can_train, train_fn, split)
        cfg.target.name = EXTERNAL  # no lit_mia regime reproduces the user's training
        cfg.net.name = EXTERNAL
        return _run(cfg, model, bundle, split, shape, train_fn, module_factory, run_name)
    finally:
        model.train(was_training)


def _run(cfg, model, bundle, split, shape, train_fn, module_factory, run_name) -> AuditResult:
    target = inputs.AuditModel(model, shape).eval()
    trainer = inputs.UserTrainer(cfg, bundle, shape, train_fn, module_factory)
    ctx = AttackContext.build(
        cfg, bundle, split, target, fit=trainer, make_net=inputs.template(model, shape)
    )
    tags = {"lit_mia.experiment": "audit", "lit_mia.target": EXTERNAL, "seed": str(cfg.seed)}
    name = run_name or f"audit/{type(model).__name__}"
    with tracking.tracked_run(cfg, name, tags) as run:
        run.log_dict(split.to_dict(), "split/indices.json")
        run.log_dict(split.sizes(), "split/sizes.json")
        ev = evaluation.evaluate(
            ctx,
            run,
            list(cfg.attacks),
            title="audit",
            base=benign_metrics(ctx),
            bins=cfg.attack.kl_bins,
            on_attack=trainer.start,
        )
        run_id = run.run_id
    uri = tracking.resolve_uri(str(cfg.tracking.uri), cfg.tracking.artifact_root)[0]
    return AuditResult(ev.metrics, ev.results, run_id, uri, len(split.members), list(cfg.attacks))


def benign_metrics(ctx: AttackContext) -> dict[str, float]:
    """The audited model's benign accuracies (no lit_mia regime: no PGD or verified ones)."""
    return {
        keys.target("train_acc"): ctx.pred.accuracy("members"),
        keys.target("test_acc"): ctx.pred.accuracy("nonmembers"),
    }


__all__ = ["audit", "benign_metrics"]
