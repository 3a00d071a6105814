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
from lit_mia.data.datasets import DatasetBundle, load_dataset
from lit_mia.training import fit, make_net
from lit_mia.updates_leak.ablation import run_ablation
from lit_mia.updates_leak.context import UpdatesContext, attack_k
from lit_mia.updates_leak.pools import UpdatePools, make_pools
from lit_mia.updates_leak.sides import BaseModels, build_farm, farm_facts


def base_fitter(cfg: DictConfig, bundle):
    """fit(train_idx, seed, train=True) -> base net: lit_mia.training.fit with the experiment's
    target regime, net and trainer, for updates.base_epochs epochs in batches of
    updates.base_batch_size (the bare net: prediction-time temperature scaling is not applied
    to the posteriors); train=False: the untrained net (to load cached weights into)."""
    bcfg = _base_cfg(cfg)

    def fit_base(idx: np.ndarray, seed: int, train: bool = True) -> torch.nn.Module:
        if not train:
            return make_net(bcfg, bundle)
        return fit(bcfg, bundle, np.asarray(idx), None, seed=seed).net

    return fit_base


def base_fields(cfg: DictConfig, bundle) -> dict:
    """What determines a base model besides its seed and training indices (cache key)."""
    u, t = cfg.updates, cfg.trainer
    return {
        "what": "updates_leak base model",
        "dataset": bundle.name,
        "net": cfg.net,
        "target": cfg.target,
        "trainer": {x: t[x] for x in ("accelerator", "precision", "deterministic", "devices")},
        "base_epochs": int(u.base_epochs),
        "base_batch_size": int(u.base_batch_size),
        "torch": torch.__version__.split("+")[0],
    }


def _base_cfg(cfg: DictConfig) -> DictConfig:
    b = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    b.trainer.max_epochs = int(cfg.updates.base_epochs)
    b.trainer.enable_progress_bar = False
    b.data.batch_size = int(cfg.updates.base_batch_size)
    return b


def prepare(cfg: DictConfig) -> tuple[DatasetBundle, UpdatePools]:
    """The data set and the disjoint pools, checked before any MLflow run exists (the
    membership split sizes, data.n_members ..., play no part here)."""
    d = cfg.data
    bundle = load_dataset(d.name, root=d.root, download=d.download)
    return bundle, make_pools(len(bundle), cfg.updates, int(cfg.seed))


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
        farms, out = {}, {}
        for k in sorted({attack_k(u, a) for a in attacks}):
            t0 = time.perf_counter()
            farm = farms[k] = build_farm(cfg, bundle, pools, bases, k, cache)
            tag = f"updates/k{k}/"
            out[tag + "farm_wall_s"] = time.perf_counter() - t0
            out[tag + "cache_hit"] = float(farm.cache_hit)
            out[tag + "shadow_base_acc"] = farm.shadow.base_acc
            out[tag + "target_base_acc"] = farm.target.base_acc
            out |= {tag + key: v for key, v in farm_facts(farm, pools).items()}
            norms = farm.target.deltas.norm(dim=1).numpy()
            for q in (10, 50, 90):
                out[tag + f"target_delta_norm_p{q}"] = float(np.percentile(norms, q))
            out[tag + "target_zero_deltas"] = float((norms == 0).mean())
            if not farm.cache_hit:
                m = len(farm.shadow.deltas) + len(farm.target.deltas)
                out[tag + "farm_models_per_s"] = m / max(farm.seconds, 1e-9)

        def logger(name: str):
            if not run.active:
                return None
            return tracking.LightningLogger(run.uri, run.run_id, prefix=f"updates/{name}/")

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
            out["updates/ablation_wall_s"] = time.perf_counter() - t1
            attacks = []
        for name in attacks:
            t1 = time.perf_counter()
            res = ATTACKS[name].run(ctx)
            out.update({f"attack/{name}/{k}": v for k, v in res.metrics.items()})
            out[f"updates/{name}_wall_s"] = time.perf_counter() - t1
            tracking.log_result(run, name, res, title=str(cfg.name))
        out |= {f"updates/{key}": v for key, v in ctx.selection.items()}
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
