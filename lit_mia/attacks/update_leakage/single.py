"""Single-sample Updates-Leak attacks (Salem et al. USENIX Security'20, §4): A_LI and A_SSR,
each trained on the shadow side's decoder inputs (representation.py) and evaluated on the
target side, next to its trivial baselines (always logged; README "Update leakage"):

  a_li   acc (argmax label) vs acc_random (uniform label), acc_majority (the most frequent
         shadow label: the best guess without the delta), acc_norm_only (multinomial logistic
         regression on the delta's log-norm alone: what the update's size says without its
         direction over the probes); for context acc_rule: the untrained rule "class whose
         mean log-posterior difference over the probes is largest"              §4.1, Fig. 2
  a_ssr  mse (per pixel, images in [0, 1]) vs mse_mean (the adversary's mean image),
         mse_class_mean (the mean image of the true label's class: what an attack that only
         knew the label would output), mse_label_random (a random adversary sample of the true
         label), mse_random (any adversary sample); mse_ae_oracle (the AE on the true sample,
         out of the adversary's reach); gain_<b> = 1 - mse / mse_<b>; z_class_mean: the
         mean per-image MSE gain over the class mean in paired standard errors    §4.2, Fig. 4

Baselines draw from the adversary's own data (shadow base + shadow pool) with
default_rng((seed, tag)); the grid shows fair random draws of target updates.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import Tensor

from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.update_leakage import match_metrics as ev
from lit_mia.attacks.update_leakage import plots
from lit_mia.attacks.update_leakage.autoencoder import (
    Autoencoder,
    MlpReconstruction,
    SampleReconstruction,
)
from lit_mia.attacks.update_leakage.context import UpdatesContext, finish, fit_attack_model
from lit_mia.attacks.update_leakage.decoders import LabelInference
from lit_mia.attacks.update_leakage.representation import unit_and_lognorm
from lit_mia.fitting import predict


def li_predict(ctx: UpdatesContext, x_sh: Tensor, y_sh: Tensor, x_tg: Tensor, base_of,
               name="a_li"):  # fmt: skip
    """A_LI: train on (shadow features, labels); (predicted target labels [m], the fit's
    selection facts); base_of: the shadow updates' base models (context.fit_attack_model)."""
    u = ctx.u
    torch.manual_seed(ctx.seed)  # module init independent of what ran before
    module = LabelInference(x_sh.shape[1], ctx.n_classes, u.hidden, u.dropout, u.li.lr)
    _, facts = fit_attack_model(ctx, name, module, (x_sh, y_sh), u.li.epochs, u.batch_size, base_of)
    return predict(module, module, x_tg).argmax(-1).numpy(), facts


def run_a_li(ctx: UpdatesContext) -> AttackResult:
    farm = ctx.farm("a_li")
    sh, tg = farm.shadow, farm.target
    x_sh, x_tg = ctx.features(farm)
    y_sh, y = sh.labels[:, 0], tg.labels[:, 0].numpy()
    pred, facts = li_predict(ctx, x_sh, y_sh, x_tg, sh.base_of)
    majority = np.bincount(y_sh.numpy(), minlength=ctx.n_classes).argmax()
    ln_sh, ln_tg = (unit_and_lognorm(s.deltas.double())[1].numpy() for s in (sh, tg))
    norm_only = LogisticRegression(max_iter=1000).fit(ln_sh, y_sh.numpy()).predict(ln_tg)
    c = ctx.n_classes
    rule = tg.deltas.view(len(y), -1, c).mean(1).argmax(-1).numpy()
    return finish(
        "a_li",
        {
            "acc": (pred == y).mean(),
            "acc_random": (ctx.rng(1).integers(0, c, y.size) == y).mean(),
            "acc_majority": (y == majority).mean(),
            "acc_norm_only": (norm_only == y).mean(),
            "acc_rule": (rule == y).mean(),
        },
        facts=facts,
    )


def train_autoencoder(ctx: UpdatesContext) -> Autoencoder:
    """The Table 2 AE on the adversary's data (shadow base + shadow pool), images in [-1, 1]."""
    u = ctx.u
    x = ctx.images(torch.as_tensor(ctx.pools.adversary))
    torch.manual_seed(ctx.seed)
    ae = Autoencoder(u.ssr.ae_lr, u.ssr.ae_dropout)
    return fit_attack_model(ctx, "a_ssr_ae", ae, (x,), u.ssr.ae_epochs, u.batch_size)[0]


def ssr_reconstruct(ctx, ae, x_sh: Tensor, sets_sh: Tensor, x_tg: Tensor, base_of,
                    name="a_ssr"):  # fmt: skip
    """A_SSR: train on shadow (features, images); (target reconstructions in [0, 1], the fit's
    selection facts); updates.ssr.decoder "mlp" (MlpReconstruction) or "autoencoder" (ae's
    decoder)."""
    u, s = ctx.u, ctx.u.ssr
    torch.manual_seed(ctx.seed)
    if str(s.decoder) == "mlp":
        module = MlpReconstruction(x_sh.shape[1], ctx.bundle.shape, s.hidden, s.dropout, s.lr)
    else:
        module = SampleReconstruction(x_sh.shape[1], ae.decoder, u.hidden, u.dropout, s.lr)
    _, facts = fit_attack_model(
        ctx, name, module, (x_sh, ctx.images(sets_sh)), s.epochs, u.batch_size, base_of
    )
    return (predict(module, module, x_tg) + 1) / 2, facts


def per_image_mse(a: Tensor, real: Tensor) -> Tensor:
    return (a - real).pow(2).flatten(1).mean(1)


def mse(a: Tensor, real: Tensor) -> float:
    return float(per_image_mse(a, real).mean())


def ssr_baselines(ctx: UpdatesContext, real: Tensor, y: np.ndarray) -> dict[str, float]:
    adv, adv_y, mean_img, class_mean = ctx.adversary()
    lab_rand = ctx.bundle.x[adv[ev.label_random_draws(y, adv_y, ctx.rng(2), True)]]
    rand = ctx.bundle.x[adv[ev.label_random_draws(y, adv_y, ctx.rng(3), False)]]
    return {
        "mse_mean": mse(mean_img.expand_as(real), real),
        "mse_class_mean": mse(class_mean[torch.as_tensor(y)], real),
        "mse_label_random": mse(lab_rand, real),
        "mse_random": mse(rand, real),
    }


def run_a_ssr(ctx: UpdatesContext) -> AttackResult:
    farm = ctx.farm("a_ssr")
    sh, tg = farm.shadow, farm.target
    x_sh, x_tg = ctx.features(farm)
    ae = train_autoencoder(ctx)
    recon, facts = ssr_reconstruct(ctx, ae, x_sh, sh.sets[:, 0], x_tg, sh.base_of)
    real = ctx.bundle.x[tg.sets[:, 0]]  # [m, C, H, W] in [0, 1]
    y = tg.labels[:, 0].numpy()
    oracle = (predict(ae, ae, real * 2 - 1) + 1) / 2
    m = {"mse": mse(recon, real), **ssr_baselines(ctx, real, y)}
    m["mse_ae_oracle"] = mse(oracle, real)
    for b in ("mean", "class_mean", "label_random", "random"):
        m[f"gain_{b}"] = 1 - m["mse"] / m[f"mse_{b}"]
    class_mean = ctx.adversary()[3]
    diff = per_image_mse(class_mean[torch.as_tensor(y)], real) - per_image_mse(recon, real)
    m["z_class_mean"] = float(diff.mean() / (diff.std() / len(diff) ** 0.5).clamp_min(1e-12))
    pick = ctx.rng(4).choice(len(real), min(int(ctx.u.ssr.n_grid), len(real)), replace=False)
    grid = plots.image_rows(
        {
            "target": real[pick].numpy(),
            "A_SSR": recon[pick].numpy(),
            "class mean": class_mean[torch.as_tensor(y[pick])].numpy(),
            "AE oracle": oracle[pick].numpy(),
        },
        title="A_SSR reconstructions (random target updates)",
    )
    return finish("a_ssr", m, {"plots/a_ssr_reconstructions.png": grid}, facts)


__all__ = ["li_predict", "run_a_li", "run_a_ssr", "ssr_baselines", "ssr_reconstruct"]
__all__ += ["train_autoencoder"]
