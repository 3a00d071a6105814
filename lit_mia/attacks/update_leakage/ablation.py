"""`updates_leak_ablation`: what the single-sample Updates-Leak attacks need (Salem et al.
USENIX Security'20 §4; issue 11). One factor at a time around the defaults, the target side
fixed (the k = 1 farm's 500 target updates):

    n_updates  the first N shadow updates (spread evenly over the shadow base models)
    n_bases    all shadow updates, from a farm with that many shadow base models (each one its
               own cached farm; the base models are shared: base j is the same net everywhere)
    n_probes   decoder inputs from the first n probes only (the same updated models)

For each point: A_LI accuracy and A_SSR MSE (the autoencoder trained once), logged stepped as
ablation/<factor>/<attack metric> (step = the factor's value) next to the attack's strongest
trivial baseline (majority label; true-class mean image), drawn in plots/ablation.png and
written to updates/ablation.json.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
from omegaconf import OmegaConf

from lit_mia.attacks.update_leakage import plots
from lit_mia.attacks.update_leakage.representation import features
from lit_mia.attacks.update_leakage.single import (
    li_predict,
    mse,
    ssr_baselines,
    ssr_reconstruct,
    train_autoencoder,
)
from lit_mia.models.update_farm import build_farm, subset


def _point(ctx, ae, sh, tg, n_probe, attacks) -> dict[str, float]:
    rep = str(ctx.u.representation)
    x_sh, x_tg = features(rep, sh, sh, n_probe), features(rep, tg, sh, n_probe)
    out = {}
    if "a_li" in attacks:
        pred, _ = li_predict(ctx, x_sh, sh.labels[:, 0], x_tg, sh.base_of, "ablation_a_li")
        out["a_li_acc"] = float((pred == tg.labels[:, 0].numpy()).mean())
    if "a_ssr" in attacks:
        recon, _ = ssr_reconstruct(ctx, ae, x_sh, sh.sets[:, 0], x_tg, sh.base_of, "ablation_a_ssr")
        out["a_ssr_mse"] = mse(recon, ctx.bundle.x[tg.sets[:, 0]])
    return out


def run_ablation(cfg, ctx, bundle, pools, bases, cache, run) -> dict[str, float]:
    """Every factor of updates.ablation; returns the flat metrics (also logged stepped)."""
    u, a = ctx.u, ctx.u.ablation
    attacks = [str(x) for x in a.attacks]
    quiet = dataclasses.replace(ctx, logger=lambda name: None)
    farm = ctx.farms[1]
    tg = farm.target
    ae = train_autoencoder(quiet) if "a_ssr" in attacks else None
    real, y = bundle.x[tg.sets[:, 0]], tg.labels[:, 0].numpy()
    majority = np.bincount(farm.shadow.labels[:, 0].numpy(), minlength=ctx.n_classes).argmax()
    base = {}
    if "a_li" in attacks:
        base["a_li_acc_majority"] = float((y == majority).mean())
    if "a_ssr" in attacks:
        base["a_ssr_mse_class_mean"] = ssr_baselines(ctx, real, y)["mse_class_mean"]
    series: dict[str, dict[str, list[tuple[float, float]]]] = {}

    def record(factor: str, x: int, point: dict[str, float]) -> None:
        lines = series.setdefault(factor, {})
        for key, v in {**point, **base}.items():
            lines.setdefault(key, []).append((x, v))
            if run is not None and run.active:
                run.log_metrics({f"ablation/{factor}/{key}": v}, step=int(x))

    m = len(farm.shadow.deltas)
    for n in a.n_updates:
        sh = subset(farm.shadow, np.arange(min(int(n), m)))
        record("n_updates", int(n), _point(quiet, ae, sh, tg, None, attacks))
    for n in a.n_bases:
        c = OmegaConf.merge(cfg, {"updates": {"n_shadow_bases": int(n)}})
        f = (
            farm
            if int(n) == int(u.n_shadow_bases)
            else build_farm(c, bundle, pools, bases, 1, cache)
        )
        record("n_bases", int(n), _point(quiet, ae, f.shadow, f.target, None, attacks))
    for n in a.n_probes:
        record("n_probes", int(n), _point(quiet, ae, farm.shadow, tg, int(n), attacks))
    if run is not None and run.active:
        run.log_figure(plots.stepped(series, "Updates-Leak ablation (k = 1)"), "plots/ablation.png")
        run.log_text(json.dumps(series, indent=1), "updates/ablation.json")
    return {
        f"ablation/{factor}/{key}_{x}": v
        for factor, lines in series.items()
        for key, pts in lines.items()
        for x, v in pts
    }


__all__ = ["run_ablation"]
