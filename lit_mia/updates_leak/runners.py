"""The four Updates-Leak attacks on a generated farm (Salem et al. USENIX Security'20).

Each `run_<name>(ctx) -> AttackResult` (the `run` of its registry entry, attacks.py) trains
its attack model on the shadow side (m_shadow deltas with their update sets' ground truth) and
evaluates it on the target side (m_target deltas), next to the paper's baselines:

  a_li   acc (argmax label); acc_random (a uniformly random label), acc_majority (the most
         frequent shadow label)                                              §4.1, Fig. 2
  a_ssr  mse (per pixel, images in [0, 1]); mse_label_random (a random adversary sample of the
         true label), mse_random (any adversary sample), mse_ae_oracle (the AE on the true
         sample: an upper bound the adversary cannot reach); gain_* = 1 - mse / baseline
                                                                             §4.2, Fig. 4
         Not in the paper, for context (MSE rewards blurry outputs): mse_mean (the mean image
         of the adversary's data) and mse_label_mean (the mean image of the true label's class)
  a_lde  kl = mean KL(true || predicted histogram), acc (argmax); kl_random / acc_random
         (a flat-Dirichlet random histogram), kl_uniform (the uniform histogram)       §5
  a_msr  mse = k-means + Hungarian matched MSE of CBM-GAN samples; mse_random (k random
         adversary samples, Hungarian matched the same way)                  §5, appendix E
         Not in the paper, for context: mse_mean (k copies of the adversary's mean image)

Baselines draw from the adversary's own data (shadow base + shadow pool) with
default_rng((seed, tag)); grids show fair random draws of target update sets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lit_mia.attacks.base import AttackResult
from lit_mia.fitting import fit_module, predict
from lit_mia.updates_leak import evaluation as ev
from lit_mia.updates_leak import plots
from lit_mia.updates_leak.autoencoder import Autoencoder, SampleReconstruction
from lit_mia.updates_leak.cbm_gan import CBMGAN
from lit_mia.updates_leak.decoders import LabelDistribution, LabelInference
from lit_mia.updates_leak.encoder import standardizer
from lit_mia.updates_leak.farm import FarmData
from lit_mia.updates_leak.pools import UpdatePools


@dataclass
class UpdatesContext:
    """What every attack reads: settings, data, pools, the farm, and a logger factory."""

    u: Any  # the `updates` settings
    bundle: Any  # DatasetBundle
    pools: UpdatePools
    farm: FarmData
    seed: int = 0
    deterministic: bool | str = True
    logger: Callable[[str], Any] = lambda name: None

    @property
    def n_classes(self) -> int:
        return int(self.bundle.n_classes)

    def stats(self) -> tuple[Tensor | None, Tensor | None]:
        return standardizer(self.farm.shadow.deltas) if self.u.standardize else (None, None)

    def images(self, idx: Tensor) -> Tensor:
        """bundle images of idx (any shape) in [-1, 1], shape idx.shape + (C, H, W)."""
        return self.bundle.x[idx] * 2 - 1

    def rng(self, tag: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, 100 + tag))


def _fit(ctx: UpdatesContext, name: str, module, tensors, epochs: int, batch_size: int):
    return fit_module(
        module,
        tensors,
        epochs=int(epochs),
        batch_size=int(batch_size),
        seed=ctx.seed,
        logger=ctx.logger(name),
        deterministic=ctx.deterministic,
    )


def _finish(name: str, metrics: dict[str, float], figures=None) -> AttackResult:
    metrics = {k: float(v) for k, v in metrics.items()}
    texts = {f"updates/{name}_metrics.json": json.dumps(metrics, indent=2, sort_keys=True)}
    return AttackResult(metrics, figures=figures or {}, texts=texts)


# ---------------------------------------------------------------- A_LI
def run_a_li(ctx: UpdatesContext) -> AttackResult:
    torch.manual_seed(ctx.seed)  # module init independent of what ran before
    u, sh, tg = ctx.u, ctx.farm.shadow, ctx.farm.target
    mean, std = ctx.stats()
    module = LabelInference(
        sh.deltas.shape[1], ctx.n_classes, u.hidden, u.dropout, u.li.lr, mean, std
    )
    _fit(ctx, "a_li", module, (sh.deltas, sh.labels[:, 0]), u.li.epochs, u.batch_size)
    pred = predict(module, module, tg.deltas).argmax(-1).numpy()
    y = tg.labels[:, 0].numpy()
    rng = ctx.rng(1)
    majority = np.bincount(sh.labels[:, 0].numpy(), minlength=ctx.n_classes).argmax()
    return _finish(
        "a_li",
        {
            "acc": (pred == y).mean(),
            "acc_random": (rng.integers(0, ctx.n_classes, y.size) == y).mean(),
            "acc_majority": (y == majority).mean(),
        },
    )


# ---------------------------------------------------------------- A_SSR
def train_autoencoder(ctx: UpdatesContext) -> Autoencoder:
    """The Table 2 AE on the adversary's data (shadow base + shadow pool), images in [-1, 1]."""
    u = ctx.u
    x = ctx.images(torch.as_tensor(ctx.pools.adversary))
    torch.manual_seed(ctx.seed)
    ae = Autoencoder(u.ssr.ae_lr, u.ssr.ae_dropout)
    return _fit(ctx, "a_ssr_ae", ae, (x,), u.ssr.ae_epochs, u.batch_size)


def run_a_ssr(ctx: UpdatesContext) -> AttackResult:
    torch.manual_seed(ctx.seed)  # module init independent of what ran before
    u, sh, tg = ctx.u, ctx.farm.shadow, ctx.farm.target
    ae = train_autoencoder(ctx)
    mean, std = ctx.stats()
    module = SampleReconstruction(
        sh.deltas.shape[1], ae.decoder, u.hidden, u.dropout, u.ssr.lr, mean, std
    )
    x_sh = ctx.images(sh.sets[:, 0])
    _fit(ctx, "a_ssr", module, (sh.deltas, x_sh), u.ssr.epochs, u.batch_size)

    real = ctx.bundle.x[tg.sets[:, 0]]  # [m, C, H, W] in [0, 1]
    recon = (predict(module, module, tg.deltas) + 1) / 2
    oracle = (predict(ae, ae, real * 2 - 1) + 1) / 2
    adv = torch.as_tensor(ctx.pools.adversary)
    adv_y = ctx.bundle.y[adv].numpy()
    y = tg.labels[:, 0].numpy()
    lab_rand = ctx.bundle.x[adv[ev.label_random_draws(y, adv_y, ctx.rng(2), True)]]
    rand = ctx.bundle.x[adv[ev.label_random_draws(y, adv_y, ctx.rng(3), False)]]

    def mse(a: Tensor) -> float:
        return float((a - real).pow(2).flatten(1).mean(1).mean())

    adv_x = ctx.bundle.x[adv]
    mean_img = adv_x.mean(0)
    class_mean = torch.stack(  # a class missing from the adversary's data: the overall mean
        [
            adv_x[torch.as_tensor(adv_y == c)].mean(0) if (adv_y == c).any() else mean_img
            for c in range(ctx.n_classes)
        ]
    )
    m = {
        "mse": mse(recon),
        "mse_label_random": mse(lab_rand),
        "mse_random": mse(rand),
        "mse_ae_oracle": mse(oracle),
        "mse_mean": mse(mean_img.expand_as(real)),
        "mse_label_mean": mse(class_mean[torch.as_tensor(y)]),
    }
    m["gain_label_random"] = 1 - m["mse"] / m["mse_label_random"]
    m["gain_random"] = 1 - m["mse"] / m["mse_random"]
    pick = ctx.rng(4).choice(len(real), min(int(u.ssr.n_grid), len(real)), replace=False)
    grid = plots.image_rows(
        {
            "original": real[pick].numpy(),
            "A_SSR": recon[pick].numpy(),
            "AE oracle": oracle[pick].numpy(),
            "Label-random": lab_rand[pick].numpy(),
        },
        title="A_SSR reconstructions (random target updates)",
    )
    return _finish("a_ssr", m, {"plots/a_ssr_reconstructions.png": grid})


# ---------------------------------------------------------------- A_LDE
def run_a_lde(ctx: UpdatesContext) -> AttackResult:
    torch.manual_seed(ctx.seed)  # module init independent of what ran before
    u, sh, tg = ctx.u, ctx.farm.shadow, ctx.farm.target
    c = ctx.n_classes
    h_sh = torch.as_tensor(ev.histograms(sh.labels.numpy(), c), dtype=torch.float32)
    h_tg = ev.histograms(tg.labels.numpy(), c)
    mean, std = ctx.stats()
    module = LabelDistribution(
        sh.deltas.shape[1], c, u.lde.hidden, u.lde.dropout, u.lde.lr, mean, std
    )
    _fit(ctx, "a_lde", module, (sh.deltas, h_sh), u.lde.epochs, u.batch_size)
    pred = predict(module, module, tg.deltas).exp().numpy()
    rand = ev.random_histograms(len(h_tg), c, ctx.rng(5))
    uniform = np.full_like(h_tg, 1.0 / c)
    m = {
        "kl": ev.kl_divergence(h_tg, pred).mean(),
        "acc": ev.argmax_accuracy(h_tg, pred),
        "kl_random": ev.kl_divergence(h_tg, rand).mean(),
        "acc_random": ev.argmax_accuracy(h_tg, rand),
        "kl_uniform": ev.kl_divergence(h_tg, uniform).mean(),
    }
    pick = ctx.rng(6).choice(len(h_tg), min(int(u.lde.n_bars), len(h_tg)), replace=False)
    fig = plots.label_bars(h_tg[pick], pred[pick], title="A_LDE (random target update sets)")
    return _finish("a_lde", m, {"plots/a_lde_label_distributions.png": fig})


# ---------------------------------------------------------------- A_MSR
def run_a_msr(ctx: UpdatesContext) -> AttackResult:
    torch.manual_seed(ctx.seed)  # module init independent of what ran before
    u, sh, tg, s = ctx.u, ctx.farm.shadow, ctx.farm.target, ctx.u.msr
    n_pix = int(np.prod(ctx.bundle.shape))
    mean, std = ctx.stats()
    module = CBMGAN(
        sh.deltas.shape[1], n_pix, u.hidden, u.dropout, s.gen_hidden, s.disc_hidden, s.z_dim,
        s.n_gen, s.best_match_weight, s.lr, s.beta1, mean, std,
    )  # fmt: skip
    real_sh = ctx.images(sh.sets).flatten(2)  # [m, k, n_pix] in [-1, 1]
    _fit(ctx, "a_msr", module, (sh.deltas, real_sh), s.epochs, s.sets_per_batch)

    torch.manual_seed(ctx.seed)
    gen = (predict(lambda d: module(d, int(s.n_eval_gen)), module, tg.deltas, 64) + 1) / 2
    real = ctx.bundle.x[tg.sets].flatten(2).numpy()  # [m, k, n_pix] in [0, 1]
    gen = gen.numpy()
    adv = np.asarray(ctx.pools.adversary)
    rng, k = ctx.rng(7), real.shape[1]
    x_all = ctx.bundle.x.flatten(1).numpy()
    mse, mse_rand, reps = [], [], []
    for i in range(len(real)):
        rep = ev.kmeans_representatives(gen[i], k, seed=ctx.seed)
        reps.append(rep)
        mse.append(ev.hungarian_mse(rep, real[i]))
        mse_rand.append(ev.hungarian_mse(x_all[rng.choice(adv, k, replace=False)], real[i]))
    mean_set = np.repeat(x_all[adv].mean(0, keepdims=True), k, axis=0)
    m = {
        "mse": np.mean(mse),
        "mse_random": np.mean(mse_rand),
        "mse_mean": np.mean([ev.hungarian_mse(mean_set, r) for r in real]),
    }
    m["gain_random"] = 1 - m["mse"] / m["mse_random"]
    figures = {}
    shape = ctx.bundle.shape
    for j, i in enumerate(ctx.rng(8).choice(len(real), min(int(s.n_grid), len(real)), False)):
        order = _matched_order(reps[i], real[i])
        figures[f"plots/a_msr_reconstructions_{j}.png"] = plots.image_rows(
            {
                "update set": real[i].reshape(k, *shape),
                "CBM-GAN": reps[i][order].reshape(k, *shape),
            },
            title=f"A_MSR: target update set {int(i)} (k-means + Hungarian matched)",
        )
    return _finish("a_msr", m, figures)


def _matched_order(pred: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Index into pred so that pred[order][j] is matched to real[j]."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(ev.pairwise_mse(pred, real))
    order = np.empty(len(real), dtype=int)
    order[cols] = rows
    return order


__all__ = ["UpdatesContext", "run_a_lde", "run_a_li", "run_a_msr", "run_a_ssr", "train_autoencoder"]
