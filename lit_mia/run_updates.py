"""`lit-mia run` for update-leakage experiments (Salem et al. USENIX Security'20).

    bundle, pools = prepare(cfg)        # data from the registry, disjoint index blocks
    one MLflow run (tracking.tracked_run: params = resolved config, config.yaml;
    pools/indices.json):
        farms, facts = build_farms(...)  # two base models (models/base_models.py), m_shadow +
                                         # m_target updated models and their deltas per
                                         # update-set size, cached under updates.cache_dir
        evaluation.evaluate(UpdatesContext, run, attacks)   # the loop every front end shares
        (or the ablation, updates.ablation.enabled)

run.run_experiment dispatches here when every listed attack is an update-leakage attack. The
run ends FAILED on any error (tracking.Run). Per-epoch training losses of the attack models are
logged stepped by epoch as updates/<name>/train/<loss>.
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from lit_mia import evaluation, tracking
from lit_mia.attacks.update_leakage.ablation import run_ablation
from lit_mia.attacks.update_leakage.context import UpdatesContext, attack_k
from lit_mia.data.datasets import DatasetBundle, load_dataset
from lit_mia.metrics import keys
from lit_mia.models.base_models import base_fields, base_fitter
from lit_mia.models.cache import ModelCache
from lit_mia.models.update_deltas import check_net
from lit_mia.models.update_farm import BaseModels, build_farms
from lit_mia.models.update_pools import UpdatePools, make_pools
from lit_mia.training import make_net


def prepare(cfg: DictConfig) -> tuple[DatasetBundle, UpdatePools]:
    """The data set and the disjoint pools, checked before any MLflow run exists (the
    membership split sizes, data.n_members ..., play no part here): pools that cannot fit
    the data set (its size from the data registry, plug-ins included) and a net with BatchNorm
    are ConfigErrors here."""
    d = cfg.data
    bundle = load_dataset(d.name, root=d.root, download=d.download)
    pools = make_pools(len(bundle), cfg.updates, int(cfg.seed))  # the registry's size
    check_net(make_net(cfg, bundle), name=str(cfg.net.name))
    return bundle, pools


def run_updates_leak(
    cfg: DictConfig, parent_run_id: str | None = None, run_name: str | None = None
) -> tracking.TargetResult:
    """Generate (or load) the farm, run every attack of `cfg.attacks`, log it all to MLflow."""
    bundle, pools = prepare(cfg)
    tags = {"lit_mia.experiment": str(cfg.name), "lit_mia.family": "updates_leak"}
    tags["seed"] = str(cfg.seed)
    with tracking.tracked_run(cfg, run_name or str(cfg.name), tags, parent_run_id) as run:
        run.log_dict(pools.to_dict(), "pools/indices.json")
        cache = ModelCache(cfg.updates.cache_dir, "updates_leak", key_name="updates.cache_dir")
        u = cfg.updates
        attacks = [str(a) for a in cfg.attacks]
        bases = BaseModels(
            base_fitter(cfg, bundle), pools, int(cfg.seed), cache, base_fields(cfg, bundle)
        )
        ks = sorted({attack_k(u, a) for a in attacks})
        farms, out = build_farms(cfg, bundle, pools, bases, ks, cache)

        def logger(name: str):
            if not run.active:
                return None
            prefix = keys.updates_attack_prefix(name)
            return tracking.LightningLogger(run.uri, run.run_id, prefix=prefix)

        ctx = UpdatesContext(
            cfg.updates,
            bundle,
            pools,
            farms,
            seed=int(cfg.seed),
            deterministic=cfg.trainer.deterministic,
            logger=logger,
        )
        if u.ablation.enabled:
            t1 = time.perf_counter()
            out |= run_ablation(cfg, ctx, bundle, pools, bases, cache, run)
            out[keys.updates("ablation_wall_s")] = time.perf_counter() - t1
            attacks = []
        ev = evaluation.evaluate(ctx, run, attacks, title=str(cfg.name), base=out)
        out = ev.metrics
        own = {keys.updates(f"{name}_wall_s"): s for name, s in ev.seconds.items()}
        run.log_metrics(own)
        out |= own
        _print_summary(cfg, out)
        return tracking.TargetResult(str(cfg.name), run.run_id, out)


def _print_summary(cfg: DictConfig, out: dict[str, float]) -> None:
    print(f"\n{cfg.name}: k={cfg.updates.k}, m_shadow={cfg.updates.m_shadow}, ", end="")
    print(f"m_target={cfg.updates.m_target}, n_probe={cfg.updates.n_probe}")
    print("| metric | value |\n|---|---|")
    for k, v in out.items():
        print(f"| {k} | {v:.4f} |")


__all__ = ["prepare", "run_updates_leak"]
