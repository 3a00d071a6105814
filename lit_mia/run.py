"""One experiment from resolved config to MLflow: the reading path of `lit-mia run`.

    configs = config.per_target(experiment, overrides)     # one per target of the experiment
    data, split = load_dataset(...), make_split(...)        # before any MLflow run exists
    for each target (one MLflow run each, children of a parent run when there are several):
        fit the target on the members (validation set for early stopping, never non-members)
        fit a shadow model the same way on the shadow pool's first half (calibration)
        rank 0: target metrics, attack scores -> metrics.py -> MLflow (+ plots, scores, ckpt)
    print a comparison table

Fits run on every rank under DDP (each rank executes this file); evaluation and tracking run
once, on rank 0 (`tracking.Run` is inert elsewhere).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from lit_mia import config, metrics, plots, tracking
from lit_mia.attacks import ATTACKS, UPDATE_ATTACKS
from lit_mia.attacks.context import AttackContext, shadow_split
from lit_mia.callbacks import LeakageCallback
from lit_mia.data.datamodule import MembershipDataModule
from lit_mia.data.datasets import DatasetBundle, load_dataset
from lit_mia.data.splits import MembershipSplit, make_split
from lit_mia.errors import ConfigError
from lit_mia.evaluation import Predictor, attack_pgd_args
from lit_mia.nets import build_net
from lit_mia.targets import TargetModule, build_target, eval_eps

TARGET_KEYS = ("train_acc", "test_acc", "adv_train_acc", "adv_test_acc")


@dataclass
class TargetResult:
    """What one target's run produced (rank 0; empty elsewhere)."""

    name: str
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- building blocks
def metric_key(label: str) -> str:
    """A target label as an MLflow-legal metric prefix: `pgd ratio=0.5` -> `pgd ratio_0.5`."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", label)


def label_of(cfg: DictConfig) -> str:
    """A target's name in run names and tables: its `targets` entry, else the regime name."""
    return str(cfg.label or cfg.target.name)


def build_data(
    cfg: DictConfig, bundles: dict | None = None
) -> tuple[DatasetBundle, MembershipSplit]:
    """The data set and this config's membership split; `bundles` caches loaded data sets
    across the targets of one experiment (their splits may differ, e.g. data.n_members)."""
    d = cfg.data
    key = (str(d.name), str(d.root), bool(d.download))
    if bundles is not None and key in bundles:
        bundle = bundles[key]
    else:
        bundle = load_dataset(d.name, root=d.root, download=d.download)
        if bundles is not None:
            bundles[key] = bundle
    split = make_split(
        len(bundle),
        n_members=d.n_members,
        n_nonmembers=d.n_nonmembers,
        n_validation=d.n_validation,
        n_shadow=d.n_shadow,
        n_probe=d.n_probe,
        seed=cfg.seed,
        dataset=d.name,
    )
    return bundle, split


def make_net(cfg: DictConfig, bundle: DatasetBundle) -> torch.nn.Module:
    n = cfg.net
    return build_net(
        n.name,
        bundle.shape,
        bundle.n_classes,
        bundle.mean,
        bundle.std,
        width=n.width,
        depth=n.depth,
        dropout=n.dropout,
        activation=n.activation,
    )


def make_trainer(cfg: DictConfig, logger, has_val: bool, callbacks=()) -> pl.Trainer:
    t = cfg.trainer
    return pl.Trainer(
        callbacks=list(callbacks),
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        precision=t.precision,
        deterministic=t.deterministic,
        logger=logger if logger is not None else False,
        enable_checkpointing=False,
        enable_progress_bar=t.enable_progress_bar,
        enable_model_summary=False,
        inference_mode=False,  # PGD needs input gradients inside validation
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if has_val else 0,
        check_val_every_n_epoch=t.val_every_n_epochs,
        log_every_n_steps=t.log_every_n_steps,
    )


def check_trainer(cfg: DictConfig) -> None:
    """Build the Trainer once so an unavailable accelerator/strategy is a ConfigError."""
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    try:
        make_trainer(cfg, None, False)
    except (MisconfigurationException, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"trainer (accelerator={cfg.trainer.accelerator}, devices={cfg.trainer.devices}, "
            f"strategy={cfg.trainer.strategy}) cannot start here: {first}"
        ) from None


def fit(
    cfg: DictConfig,
    bundle: DatasetBundle,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None,
    *,
    logger=None,
    seed: int | None = None,
    callbacks=(),
) -> TargetModule:
    """Train one model of the configured regime on `train_idx` (all ranks under DDP)."""
    seed = cfg.seed if seed is None else seed
    pl.seed_everything(seed, workers=True, verbose=False)
    module = build_target(cfg, make_net(cfg, bundle), torch.tensor(train_idx, dtype=torch.long))
    has_val = val_idx is not None and len(val_idx) > 0
    dm = MembershipDataModule(
        bundle,
        train_idx,
        val_idx if has_val else None,
        batch_size=cfg.data.batch_size,
        num_workers=cfg.data.num_workers,
        seed=seed,
        augment=cfg.data.augment,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*number of training batches.*")
        make_trainer(cfg, logger, has_val, callbacks).fit(module, datamodule=dm)
    return module.cpu().eval()


def _subset(bundle: DatasetBundle, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.tensor(idx, dtype=torch.long)
    return bundle.x[t], bundle.y[t]


def eval_sets(bundle: DatasetBundle, members, nonmembers, n_eval: int | None):
    """Equal numbers of members and non-members (the first n of each, the split is random)."""
    n = min(len(members), len(nonmembers), n_eval or len(members))
    return {"members": _subset(bundle, members[:n]), "nonmembers": _subset(bundle, nonmembers[:n])}


def target_metrics(cfg: DictConfig, pred: Predictor) -> dict[str, float]:
    """CCS'19 target metrics: benign and PGD-20 (step 2.5*eps/20, no random start) accuracy."""
    args = attack_pgd_args(eval_eps(cfg), steps=20)
    out = {
        "target/train_acc": pred.accuracy("members"),
        "target/test_acc": pred.accuracy("nonmembers"),
        "target/adv_train_acc": pred.accuracy("members", **args),
        "target/adv_test_acc": pred.accuracy("nonmembers", **args),
        "target/eval_eps": args["eps"],
    }
    if getattr(pred.model, "verifiable", False):
        out["target/ver_train_acc"] = pred.verified_accuracy("members", args["eps"])
        out["target/ver_test_acc"] = pred.verified_accuracy("nonmembers", args["eps"])
    return out


# ---------------------------------------------------------------- one target
@contextmanager
def tracked_run(
    cfg: DictConfig, run_name: str, tags: dict[str, str], parent_run_id: str | None = None
) -> Iterator[tracking.Run]:
    """An MLflow run (tracking.Run: FAILED / KILLED on errors) with the resolved config logged
    as params and as config.yaml."""
    tr = cfg.tracking
    with tracking.Run(
        tr.uri,
        tr.experiment,
        run_name,
        artifact_root=tr.artifact_root,
        tags=tags,
        parent_run_id=parent_run_id,
    ) as run:
        run.log_params(config.flatten(cfg))
        run.log_text(config.to_yaml(cfg), "config.yaml")
        yield run


def run_target(
    cfg: DictConfig,
    bundle: DatasetBundle,
    split: MembershipSplit,
    parent_run_id: str | None = None,
    run_name: str | None = None,
) -> TargetResult:
    tname = label_of(cfg)
    tr = cfg.tracking
    tags = {
        "lit_mia.experiment": str(cfg.name),
        "lit_mia.target": str(cfg.target.name),
        "lit_mia.label": tname,
        "seed": str(cfg.seed),
    }
    with tracked_run(cfg, run_name or f"{cfg.name}/{tname}", tags, parent_run_id) as run:
        run.log_dict(split.to_dict(), "split/indices.json")
        run.log_dict(split.sizes(), "split/sizes.json")

        leakage = leakage_callback(cfg, bundle, split)
        target = fit(
            cfg,
            bundle,
            split.members,
            split.validation,
            logger=run.lightning_logger(),
            callbacks=[leakage] if leakage else [],
        )
        shadows = [  # every rank takes part in DDP fits; attacks then run on rank 0 only
            fit(cfg, bundle, shadow_split(split, i)[0], None, seed=cfg.seed + 1 + i)
            for i in range(n_shadows(cfg))
        ]
        if not tracking.is_rank_zero():
            return TargetResult(tname, None)

        result = evaluate(cfg, bundle, split, target, run, shadows)
        if leakage is not None and leakage.history:
            run.log_figure(plots.leakage_curves(leakage.history, title=tname), "plots/leakage.png")
        if tr.log_checkpoint:
            run.log_torch_state(target.net.state_dict(), "target.pt")
        return TargetResult(tname, run.run_id, result)


def leakage_callback(cfg: DictConfig, bundle, split) -> LeakageCallback | None:
    """The leakage-over-training callback when `attack.leakage_every` > 0: I_B / I_A on the
    first `attack.leakage_n` members and non-members, attack-time PGD at `attack.eps`."""
    a = cfg.attack
    if a.leakage_every <= 0:
        return None
    n = min(a.leakage_n, len(split.members), len(split.nonmembers))
    return LeakageCallback(
        _subset(bundle, split.members[:n]),
        _subset(bundle, split.nonmembers[:n]),
        every=a.leakage_every,
        pgd_args=attack_pgd_args(a.eps, a.steps, a.step_size, a.random_start),
        batch_size=a.batch_size,
    )


def n_shadows(cfg: DictConfig) -> int:
    """Shadow models the experiment's attacks will use (trained once, shared by all)."""
    return max((ATTACKS[a].shadows(cfg) for a in cfg.attacks), default=0)


def evaluate(cfg, bundle, split, target, run, shadows=()) -> dict[str, float]:
    """Target metrics and every attack's metrics; logs them, the scores and the plots."""
    acfg = cfg.attack
    sets = eval_sets(bundle, split.members, split.nonmembers, acfg.n_eval)
    n = len(sets["members"][1])
    eval_idx = {"members": split.members[:n], "nonmembers": split.nonmembers[:n]}
    pred = Predictor(target, sets, acfg.batch_size)
    out = target_metrics(cfg, pred)
    ctx = AttackContext(
        cfg,
        bundle,
        split,
        target,
        pred,
        eval_idx,
        fit=lambda idx, seed: fit(cfg, bundle, idx, None, seed=seed),
    )
    for module in shadows:
        ctx.add_shadow(module)
    curves = {}
    for name in cfg.attacks:
        res = ATTACKS[name].run(ctx)
        out.update({f"attack/{name}/{k}": v for k, v in res.metrics.items()})
        log_attack_artifacts(run, cfg, name, res)
        if res.scores is not None:
            curves[name] = (res.scores, res.is_member)
    if ctx.shadows_trained:
        sp = ctx.shadow_models(1)[0].predictor
        out["shadow/train_acc"] = sp.accuracy("members")
        out["shadow/test_acc"] = sp.accuracy("nonmembers")
    if curves:
        title = f"{cfg.name}/{label_of(cfg)}"
        run.log_figure(plots.roc_loglog(curves, title=title), "plots/roc_loglog.png")
        run.log_figure(plots.pr_curves(curves, title=title), "plots/pr_curve.png")
    run.log_metrics(out)
    return out


def log_attack_artifacts(run, cfg, name: str, res) -> None:
    """Per-sample scores, histograms, the attack's own figures/texts and step series."""
    if res.scores is not None:
        run.log_text(
            metrics.scores_table(res.scores, res.is_member, res.losses, res.index),
            f"scores/{name}.csv",
        )
        member = res.is_member == 1
        hists = {"score": res.scores}
        if res.losses is not None:
            hists["loss"] = res.losses
        for what, v in hists.items():
            run.log_figure(
                plots.loss_histogram(
                    v[member],
                    v[~member],
                    bins=cfg.attack.kl_bins,
                    title=f"{label_of(cfg)}: {name} {what}",
                    xlabel=what,
                ),
                f"plots/{name}_{what}_hist.png",
            )
    for path, fig in res.figures.items():
        run.log_figure(fig, path)
    for path, text in res.texts.items():
        run.log_text(text, path)
    for key, values in res.series.items():
        for step, v in enumerate(values):
            run.log_metrics({f"attack/{name}/{key}": float(v)}, step=step)


# ---------------------------------------------------------------- experiment
def run_experiment(
    experiment: str,
    overrides: list[str] | None = None,
    parent_run_id: str | None = None,
    run_name: str | None = None,
) -> dict[str, TargetResult]:
    """Resolve, train, attack and track every target of an experiment."""
    cfgs = config.per_target(experiment, overrides)
    if all(a in UPDATE_ATTACKS for a in cfgs[0].attacks):  # update leakage: its own pipeline
        from lit_mia.updates_leak.pipeline import run_updates_leak

        return {"updates": run_updates_leak(cfgs[0], parent_run_id, run_name)}
    bundles: dict = {}
    data = [build_data(cfg, bundles) for cfg in cfgs]  # per target: entries may resize the split
    for cfg, (bundle, _) in zip(cfgs, data, strict=True):
        # fail on bad nets, regimes (e.g. DP-SGD layers), trainers before any run
        build_target(cfg, make_net(cfg, bundle))
        check_trainer(cfg)
    results: dict[str, TargetResult] = {}
    if len(cfgs) == 1:
        cfg, (bundle, split) = cfgs[0], data[0]
        results[label_of(cfg)] = run_target(cfg, bundle, split, parent_run_id, run_name)
        return results

    base = cfgs[0]
    tr = base.tracking
    with tracking.Run(
        tr.uri,
        tr.experiment,
        run_name or str(base.name),
        artifact_root=tr.artifact_root,
        parent_run_id=parent_run_id,
        tags={"lit_mia.experiment": str(base.name), "seed": str(base.seed)},
    ) as parent:
        parent.log_params(
            {k: v for k, v in config.flatten(base).items() if not k.startswith("target.")}
        )
        parent.log_text(config.to_yaml(base), "config.yaml")
        for cfg, (bundle, split) in zip(cfgs, data, strict=True):
            results[label_of(cfg)] = run_target(cfg, bundle, split, parent.run_id)
        if tracking.is_rank_zero():
            table = comparison_table(results, list(base.attacks))
            parent.log_text(table, "comparison.md")
            flat = {
                f"{metric_key(t)}/{k}": v for t, r in results.items() for k, v in r.metrics.items()
            }
            parent.log_metrics(flat)
            bar_keys = [
                k
                for k in (f"attack/{a}/acc_best" for a in base.attacks)
                if any(k in r.metrics for r in results.values())
            ]
            if bar_keys:
                parent.log_figure(
                    plots.comparison_bar(
                        {t: r.metrics for t, r in results.items()},
                        bar_keys,
                        title="membership inference accuracy (oracle threshold)",
                    ),
                    "plots/comparison.png",
                )
            if base.compare_by:
                parent.log_figure(
                    compare_plot(cfgs, results, list(base.attacks)), "plots/compare_by.png"
                )
    return results


def compare_plot(cfgs: list[DictConfig], results: dict[str, TargetResult], attacks: list[str]):
    """Each attack's AUC against the experiment's `compare_by` key, one point per target
    (e.g. AUC vs training-set size for a target ladder, Li & Zhang CCS'21 Fig. 10)."""
    from omegaconf import OmegaConf

    key = str(cfgs[0].compare_by)
    xs = [float(OmegaConf.select(c, key)) for c in cfgs]
    order = np.argsort(xs)
    curves = {}
    for a in attacks:
        ys = [results[label_of(c)].metrics.get(f"attack/{a}/auc", np.nan) for c in cfgs]
        curves[a] = [ys[i] for i in order]
    return plots.metric_vs(
        [xs[i] for i in order], curves, xlabel=key, ylabel="attack AUC", title=str(cfgs[0].name)
    )


def comparison_table(results: dict[str, TargetResult], attacks: list[str]) -> str:
    """Markdown table: target accuracy and each attack's inference accuracy per target (columns
    of metrics no target has, e.g. ia_sweep's per-eps series, are left out). An update-leakage
    run (no target metrics) is listed as attack metric | value."""
    if all(not k.startswith("target/") for r in results.values() for k in r.metrics):
        rows = [
            f"| {k} | {v:.4f} |"
            for r in results.values()
            for k, v in sorted(r.metrics.items())
            if k.startswith("attack/")
        ]
        return "\n".join(["| metric | value |", "|---|---|", *rows])
    cols = [
        ("train", "target/train_acc"),
        ("test", "target/test_acc"),
        ("adv-train", "target/adv_train_acc"),
        ("adv-test", "target/adv_test_acc"),
    ]
    if any("target/ver_train_acc" in r.metrics for r in results.values()):
        cols += [("ver-train", "target/ver_train_acc"), ("ver-test", "target/ver_test_acc")]
    for a in attacks:
        cols += [
            (f"{a} acc", f"attack/{a}/acc_best"),
            (f"{a} calib", f"attack/{a}/acc_calibrated"),
            (f"{a} auc", f"attack/{a}/auc"),
        ]
    present = {k for r in results.values() for k in r.metrics}
    cols = [(c, k) for c, k in cols if k in present or k.startswith("target/")]
    head = "| target | " + " | ".join(c for c, _ in cols) + " |"
    sep = "|---" * (len(cols) + 1) + "|"
    rows = []
    for t, r in results.items():
        vals = [f"{r.metrics[k]:.3f}" if k in r.metrics else "-" for _, k in cols]
        rows.append(f"| {t} | " + " | ".join(vals) + " |")
    return "\n".join([head, sep, *rows])


def load_state(path: str | Path) -> dict:
    """Load a checkpoint written by `Run.log_torch_state` (weights only, no pickled code)."""
    return torch.load(path, map_location="cpu", weights_only=True)


__all__ = ["run_experiment", "run_target", "fit", "build_data", "comparison_table", "load_state"]
