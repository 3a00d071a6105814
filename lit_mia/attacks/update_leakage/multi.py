"""Multi-sample Updates-Leak attacks (Salem et al. USENIX Security'20, §5, appendix E): A_LDE
and A_MSR, trained on the shadow side and evaluated on the target side next to their trivial
baselines (always logged; README "Update leakage"):

  a_lde  kl = mean KL(true || predicted histogram), acc (argmax) vs kl_uniform (the uniform
         histogram), kl_shadow_mean (the shadow sets' mean histogram), kl_random / acc_random
         (a flat-Dirichlet random histogram)
  a_msr  mse = k-means + Hungarian matched MSE of CBM-GAN samples (images in [0, 1]) vs
         mse_mean (k copies of the adversary's mean image), mse_class_means (k class-mean
         images, counts by the A_LDE histogram predicted for the set, largest remainder),
         mse_random (k random adversary samples); for context mse_class_means_true (counts by
         the true histogram: needs the labels the adversary does not have); gain_<b>

The CBM-GAN's per-epoch losses are logged stepped (updates/a_msr/train/...) and drawn as
plots/a_msr_training_curve.png; grids show fair random draws of target update sets.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.update_leakage import match_metrics as ev
from lit_mia.attacks.update_leakage import plots
from lit_mia.attacks.update_leakage.cbm_gan import CBMGAN
from lit_mia.attacks.update_leakage.context import UpdatesContext, finish, fit_attack_model
from lit_mia.attacks.update_leakage.decoders import LabelDistribution
from lit_mia.fitting import predict


def lde_predict(ctx: UpdatesContext, farm, name: str = "a_lde") -> tuple[np.ndarray, np.ndarray]:
    """A_LDE on `farm`: (true target histograms [m, C], predicted target histograms [m, C],
    the fit's selection facts)."""
    u, c = ctx.u, ctx.n_classes
    x_sh, x_tg = ctx.features(farm)
    h_sh = torch.as_tensor(ev.histograms(farm.shadow.labels.numpy(), c), dtype=torch.float32)
    torch.manual_seed(ctx.seed)
    module = LabelDistribution(x_sh.shape[1], c, u.lde.hidden, u.lde.dropout, u.lde.lr)
    _, facts = fit_attack_model(
        ctx, name, module, (x_sh, h_sh), u.lde.epochs, u.batch_size, farm.shadow.base_of
    )
    pred = predict(module, module, x_tg).exp().numpy()
    return ev.histograms(farm.target.labels.numpy(), c), pred, facts


def run_a_lde(ctx: UpdatesContext) -> AttackResult:
    farm = ctx.farm("a_lde")
    c = ctx.n_classes
    h_tg, pred, facts = lde_predict(ctx, farm)
    h_sh = ev.histograms(farm.shadow.labels.numpy(), c)
    rand = ev.random_histograms(len(h_tg), c, ctx.rng(5))

    def kl(h) -> float:
        return float(ev.kl_divergence(h_tg, np.broadcast_to(h, h_tg.shape)).mean())

    m = {
        "kl": kl(pred),
        "acc": ev.argmax_accuracy(h_tg, pred),
        "kl_uniform": kl(np.full(c, 1.0 / c)),
        "kl_shadow_mean": kl(h_sh.mean(0)),
        "kl_random": kl(rand),
        "acc_random": ev.argmax_accuracy(h_tg, rand),
    }
    for b in ("uniform", "shadow_mean", "random"):
        m[f"ratio_{b}"] = m["kl"] / m[f"kl_{b}"]
    pick = ctx.rng(6).choice(len(h_tg), min(int(ctx.u.lde.n_bars), len(h_tg)), replace=False)
    fig = plots.label_bars(h_tg[pick], pred[pick], title="A_LDE (random target update sets)")
    return finish("a_lde", m, {"plots/a_lde_label_distributions.png": fig}, facts)


def counts_from_histogram(h: np.ndarray, k: int) -> np.ndarray:
    """Largest-remainder rounding of k * h to integer counts summing to k."""
    raw = np.asarray(h, dtype=np.float64) * k
    counts = np.floor(raw).astype(int)
    rest = k - counts.sum()
    if rest > 0:
        counts[np.argsort(-(raw - counts), kind="stable")[:rest]] += 1
    return counts


def class_mean_sets(hists: np.ndarray, class_mean: np.ndarray, k: int) -> np.ndarray:
    """[m, k, D]: per set, counts_from_histogram(h, k) copies of each class-mean image."""
    return np.stack([np.repeat(class_mean, counts_from_histogram(h, k), axis=0) for h in hists])


def run_a_msr(ctx: UpdatesContext) -> AttackResult:
    u, s, farm = ctx.u, ctx.u.msr, ctx.farm("a_msr")
    sh, tg = farm.shadow, farm.target
    x_sh, x_tg = ctx.features(farm)
    n_pix = int(np.prod(ctx.bundle.shape))
    torch.manual_seed(ctx.seed)
    module = CBMGAN(
        x_sh.shape[1], n_pix, u.hidden, u.dropout, s.gen_hidden, s.disc_hidden, s.z_dim,
        s.n_gen, s.best_match_weight, s.lr, s.beta1,
    )  # fmt: skip
    real_sh = ctx.images(sh.sets).flatten(2)  # [m, k, n_pix] in [-1, 1]
    _, facts = fit_attack_model(
        ctx, "a_msr", module, (x_sh, real_sh), s.epochs, s.sets_per_batch, sh.base_of
    )
    torch.manual_seed(ctx.seed)
    gen = (predict(lambda d: module(d, int(s.n_eval_gen)), module, x_tg, 64) + 1) / 2
    gen = gen.numpy()
    real = ctx.bundle.x[tg.sets].flatten(2).numpy()  # [m, k, n_pix] in [0, 1]
    k = real.shape[1]
    adv, _, mean_img, class_mean = ctx.adversary()
    cm = class_mean.flatten(1).numpy()
    h_true, h_pred, lde_facts = lde_predict(ctx, farm, name="a_msr_lde")
    x_all = ctx.bundle.x.flatten(1).numpy()
    rng = ctx.rng(7)
    reps = [ev.kmeans_representatives(g, k, seed=ctx.seed) for g in gen]
    mean_set = np.repeat(mean_img.flatten()[None].numpy(), k, axis=0)

    def avg(sets) -> float:
        return float(np.mean([ev.hungarian_mse(p, r) for p, r in zip(sets, real, strict=True)]))

    m = {
        "mse": avg(reps),
        "mse_mean": avg([mean_set] * len(real)),
        "mse_class_means": avg(class_mean_sets(h_pred, cm, k)),
        "mse_random": avg([x_all[rng.choice(adv.numpy(), k, replace=False)] for _ in real]),
        "mse_class_means_true": avg(class_mean_sets(h_true, cm, k)),
    }
    for b in ("mean", "class_means", "random"):
        m[f"gain_{b}"] = 1 - m["mse"] / m[f"mse_{b}"]
    figures = {"plots/a_msr_training_curve.png": plots.curves(module.history, "CBM-GAN")}
    shape = ctx.bundle.shape
    for j, i in enumerate(ctx.rng(8).choice(len(real), min(int(s.n_grid), len(real)), False)):
        rows, cols = linear_sum_assignment(ev.pairwise_mse(reps[i], real[i]))
        order = rows[np.argsort(cols)]
        figures[f"plots/a_msr_reconstructions_{j}.png"] = plots.image_rows(
            {
                "update set": real[i].reshape(k, *shape),
                "CBM-GAN": reps[i][order].reshape(k, *shape),
            },
            title=f"A_MSR: target update set {int(i)} (k-means + Hungarian matched)",
        )
    return finish("a_msr", m, figures, facts | lde_facts)


__all__ = ["class_mean_sets", "counts_from_histogram", "lde_predict", "run_a_lde", "run_a_msr"]
