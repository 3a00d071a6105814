"""`lit-mia run` for update-leakage experiments (Salem et al. USENIX Security'20).

    pools = make_pools(len(data), cfg.updates, cfg.seed)     # disjoint index blocks
    one MLflow run (tracking.tracked_run: params = resolved config, config.yaml;
    pools/indices.json):
        farm = build_farm(...)    # two base models (lit_mia.training.fit with the target
                                  # regime, updates.base_epochs / base_batch_size), m_shadow +
                                  # m_target updated models, deltas; cached under
                                  # updates.cache_dir
        for each attack in `attacks`: ATTACKS[name].run(ctx) -> AttackResult, written by
        tracking.log_result (metrics as attack/<name>/<key>, baselines beside them; figures,
        texts); farm facts and wall times as updates/<key>

run.run_experiment dispatches here when every listed attack is an update-leakage attack. The
run ends FAILED on any error (tracking.Run). Per-epoch training losses of the attack models are
logged stepped by epoch as updates/<name>/train/<loss>.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from lit_mia import tracking
from lit_mia.attacks.registry import ATTACKS
from lit_mia.cache import ModelCache
from lit_mia.data.datasets import load_dataset
from lit_mia.training import fit
from lit_mia.updates_leak.farm import build_farm
from lit_mia.updates_leak.pools import make_pools
from lit_mia.updates_leak.runners import UpdatesContext


def base_fitter(cfg: DictConfig, bundle):
    """fit(train_idx, seed) -> base net: lit_mia.training.fit with the experiment's target
    regime, net and trainer, for updates.base_epochs epochs in batches of
    updates.base_batch_size (the bare net: prediction-time temperature scaling is not applied
    to the posteriors)."""
    bcfg = _base_cfg(cfg)

    def fit_base(idx: np.ndarray, seed: int) -> torch.nn.Module:
        return fit(bcfg, bundle, np.asarray(idx), None, seed=seed).net

    return fit_base


def _base_cfg(cfg: DictConfig) -> DictConfig:
    b = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    b.trainer.max_epochs = int(cfg.updates.base_epochs)
    b.trainer.enable_progress_bar = False
    b.data.batch_size = int(cfg.updates.base_batch_size)
    return b


def run_updates_leak(
    cfg: DictConfig, parent_run_id: str | None = None, run_name: str | None = None
) -> tracking.TargetResult:
    """Generate (or load) the farm, run every attack of `cfg.attacks`, log it all to MLflow."""
    d = cfg.data  # the membership split sizes (data.n_members, ...) play no part here
    bundle = load_dataset(d.name, root=d.root, download=d.download)
    pools = make_pools(len(bundle), cfg.updates, int(cfg.seed))
    tags = {"lit_mia.experiment": str(cfg.name), "lit_mia.family": "updates_leak"}
    tags["seed"] = str(cfg.seed)
    with tracking.tracked_run(cfg, run_name or str(cfg.name), tags, parent_run_id) as run:
        run.log_dict(pools.to_dict(), "pools/indices.json")
        cache = ModelCache(cfg.updates.cache_dir, "updates_leak", key_name="updates.cache_dir")
        t0 = time.perf_counter()
        farm = build_farm(cfg, bundle, pools, base_fitter(cfg, bundle), cache)
        out = {
            "updates/farm_wall_s": time.perf_counter() - t0,
            "updates/cache_hit": float(farm.cache_hit),
            "updates/shadow_base_acc": farm.shadow.base_acc,
            "updates/target_base_acc": farm.target.base_acc,
            "updates/delta_abs_mean": float(farm.target.deltas.abs().mean()),
        }
        if not farm.cache_hit:
            m = len(farm.shadow.deltas) + len(farm.target.deltas)
            out["updates/farm_models_per_s"] = m / max(farm.seconds, 1e-9)

        def logger(name: str):
            if not run.active:
                return None
            return tracking.LightningLogger(run.uri, run.run_id, prefix=f"updates/{name}/")

        ctx = UpdatesContext(
            cfg.updates,
            bundle,
            pools,
            farm,
            seed=int(cfg.seed),
            deterministic=cfg.trainer.deterministic,
            logger=logger,
        )
        for name in map(str, cfg.attacks):
            t1 = time.perf_counter()
            res = ATTACKS[name].run(ctx)
            out.update({f"attack/{name}/{k}": v for k, v in res.metrics.items()})
            out[f"updates/{name}_wall_s"] = time.perf_counter() - t1
            tracking.log_result(run, name, res, title=str(cfg.name))
        run.log_metrics({k: v for k, v in out.items() if not k.startswith("attack/")})
        _print_summary(cfg, out)
        return tracking.TargetResult(str(cfg.name), run.run_id, out)


def _print_summary(cfg: DictConfig, out: dict[str, float]) -> None:
    print(f"\n{cfg.name}: k={cfg.updates.k}, m_shadow={cfg.updates.m_shadow}, ", end="")
    print(f"m_target={cfg.updates.m_target}, n_probe={cfg.updates.n_probe}")
    print("| metric | value |\n|---|---|")
    for k, v in out.items():
        print(f"| {k} | {v:.4f} |")


__all__ = ["base_fitter", "run_updates_leak"]
