"""One experiment from resolved config to MLflow: the reading path of `lit-mia run`.

    configs = config.per_target(experiment, overrides)     # one per target of the experiment
    data, split = training.build_data(cfg)                  # before any MLflow run exists
    for each target (one MLflow run each, children of a parent run when there are several):
        training.fit_target the target on the members (validation set for early stopping, never
            non-members), and the shadow models the attacks ask for (every rank under DDP)
        rank 0: target metrics, then every attack of the registry on an AttackContext
            -> AttackResult -> tracking.log_result (+ ROC / PR plots, checkpoint)
    comparison.log_parent: comparison table and plots on the parent run

Update-leakage experiments (every listed attack of kind update_leakage) go to
run_updates.py. Fits run on every rank under DDP (each rank executes this file);
evaluation and tracking run once, on rank 0 (`tracking.Run` is inert elsewhere).
"""

from __future__ import annotations

from omegaconf import DictConfig

from lit_mia import comparison, config, evaluation, plots, progress, tracking, training
from lit_mia.attacks.base import UPDATE_LEAKAGE
from lit_mia.attacks.context import AttackContext, check_shadow_pool
from lit_mia.attacks.placebo import placebo_shadows
from lit_mia.attacks.registry import ATTACKS
from lit_mia.callbacks import LeakageCallback
from lit_mia.data.datasets import DatasetBundle
from lit_mia.data.splits import MembershipSplit
from lit_mia.metrics import keys
from lit_mia.perturb.pgd import pgd_args
from lit_mia.run_updates import run_updates_leak
from lit_mia.targets import build_target
from lit_mia.tracking import TargetResult


def run_target(
    cfg: DictConfig,
    bundle: DatasetBundle,
    split: MembershipSplit,
    parent_run_id: str | None = None,
    run_name: str | None = None,
) -> TargetResult:
    """Train, attack and track one target (one MLflow run)."""
    tname = comparison.label_of(cfg)
    tags = {
        "lit_mia.experiment": str(cfg.name),
        "lit_mia.target": str(cfg.target.name),
        "lit_mia.label": tname,
        "seed": str(cfg.seed),
    }
    with tracking.tracked_run(cfg, run_name or f"{cfg.name}/{tname}", tags, parent_run_id) as run:
        run.log_dict(split.to_dict(), "split/indices.json")
        run.log_dict(split.sizes(), "split/sizes.json")

        leakage = leakage_callback(cfg, bundle, split)
        target = training.fit_target(
            cfg,
            bundle,
            split.members,
            split.validation,
            logger=run.lightning_logger(),
            callbacks=[leakage] if leakage else [],
        )
        ctx = AttackContext.build(cfg, bundle, split, target)
        ctx.shadow_models(shadows_to_train(cfg, split))  # every rank takes part in DDP fits
        if not tracking.is_rank_zero():
            return TargetResult(tname, None)

        ev = evaluate(ctx, run)
        if leakage is not None and leakage.history:
            run.log_figure(plots.leakage_curves(leakage.history, title=tname), "plots/leakage.png")
        if cfg.tracking.log_checkpoint:
            run.log_torch_state(target.net.state_dict(), "target.pt")
        return TargetResult(tname, run.run_id, ev.metrics, ev.scored())


def leakage_callback(cfg: DictConfig, bundle, split) -> LeakageCallback | None:
    """The leakage-over-training callback when `attack.leakage_every` > 0: I_B / I_A on the
    first `attack.leakage_n` members and non-members, attack-time PGD at `attack.eps`."""
    a = cfg.attack
    if a.leakage_every <= 0:
        return None
    n = min(a.leakage_n, len(split.members), len(split.nonmembers))
    return LeakageCallback(
        training.subset(bundle, split.members[:n]),
        training.subset(bundle, split.nonmembers[:n]),
        every=a.leakage_every,
        pgd_args=pgd_args(a),
        batch_size=a.batch_size,
    )


def n_shadows(cfg: DictConfig) -> int:
    """Shadow models the experiment's attacks will use (trained once, shared by all)."""
    return max((ATTACKS[a].shadows(cfg) for a in cfg.attacks), default=0)


def shadows_to_train(cfg: DictConfig, split: MembershipSplit) -> int:
    """Shadow models a target run trains up front: those the attacks use, and at least shadow
    model 0 when it serves as the placebo model (attacks/placebo.py)."""
    return max(n_shadows(cfg), placebo_shadows(cfg, split))


def evaluate(ctx: AttackContext, run: tracking.Run) -> evaluation.Evaluation:
    """Target metrics and every attack's result on one trained target; logs them all
    (evaluation.evaluate, with the target's benign, PGD and verified accuracies)."""
    cfg, label = ctx.cfg, comparison.label_of(ctx.cfg)
    with progress.task(f"accuracy of {label}") as shown:  # PGD on every evaluation sample
        base = training.target_metrics(cfg, ctx.pred)
        shown.done(accuracy_summary(base))
    return evaluation.evaluate(
        ctx,
        run,
        list(cfg.attacks),
        title=label,
        base=base,
        bins=cfg.attack.kl_bins,
        roc_title=f"{cfg.name}/{label}",
    )


def accuracy_summary(base: dict[str, float]) -> str:
    """`test acc 0.948  adv test acc 0.669 (eps 0.1)`: the finished line of a target's
    accuracies (`training.target_metrics`)."""
    test, adv = base[keys.target("test_acc")], base[keys.target("adv_test_acc")]
    return f"test acc {test:.3f}  adv test acc {adv:.3f} (eps {base[keys.target('eval_eps')]:g})"


def is_updates_leak(cfg: DictConfig) -> bool:
    """Every listed attack is an update-leakage attack (run_updates.py runs it)."""
    return all(ATTACKS[a].kind == UPDATE_LEAKAGE for a in cfg.attacks)


def prepare(cfgs: list[DictConfig]) -> list[tuple[DatasetBundle, MembershipSplit]]:
    """Data and split of every target, with every check that needs no training: bad nets,
    regimes (e.g. DP-SGD layers), trainers and shadow pools fail here, before any MLflow run
    exists (`lit-mia run --dry-run` stops after this)."""
    bundles: dict = {}
    data = [training.build_data(cfg, bundles) for cfg in cfgs]  # entries may resize the split
    for cfg, (bundle, split) in zip(cfgs, data, strict=True):
        build_target(cfg, training.make_net(cfg, bundle))
        training.check_trainer(cfg)
        check_shadow_pool(split, n_shadows(cfg))
    return data


def run_experiment(
    experiment: str,
    overrides: list[str] | None = None,
    parent_run_id: str | None = None,
    run_name: str | None = None,
) -> dict[str, TargetResult]:
    """Resolve, train, attack and track every target of an experiment."""
    with progress.stages(f"run {experiment}", "resolving the configuration") as stage:
        cfgs = config.per_target(experiment, overrides)
        if is_updates_leak(cfgs[0]):
            stage.set("update leakage")
            return {"updates": run_updates_leak(cfgs[0], parent_run_id, run_name)}
        stage.set("checking the data and settings")
        return _run_targets(cfgs, stage, parent_run_id, run_name)


def _run_targets(cfgs, stage: progress.Stage, parent_run_id, run_name) -> dict[str, TargetResult]:
    data = prepare(cfgs)
    stage.set("opening the MLflow run")
    results: dict[str, TargetResult] = {}
    if len(cfgs) == 1:
        cfg, (bundle, split) = cfgs[0], data[0]
        label = comparison.label_of(cfg)
        stage.set(f"{label}: training, attacking, logging")
        results[label] = run_target(cfg, bundle, split, parent_run_id, run_name)
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
            label = comparison.label_of(cfg)
            stage.set(f"{label}: training, attacking, logging")
            results[label] = run_target(cfg, bundle, split, parent.run_id)
        stage.set("comparing the targets")
        if tracking.is_rank_zero():
            comparison.log_parent(parent, cfgs, results)
    return results


__all__ = [
    "evaluate",
    "is_updates_leak",
    "prepare",
    "run_experiment",
    "run_target",
    "shadows_to_train",
]
