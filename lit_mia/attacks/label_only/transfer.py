"""`transfer` (Li & Zhang CCS'21 §3, Algorithm 1): membership transfers to a model trained on
the target's labels.

1. Relabel a pool disjoint from the evaluation sets (`attack.transfer.pool`, default the split's
   shadow pool) with the target's predicted labels: one label query per pool sample.
2. Train a shadow model on the relabelled pool: any net of the zoo (`net`, `width`; default the
   target's own architecture, as the paper), Adam at `lr`, `epochs` epochs, batch `batch_size`
   (the paper: Adam 1e-3, batch 128), as a Lightning fit of `NaturalTarget`.
3. Score every candidate by the shadow model's cross-entropy at its *true* label (eq. 1): member
   iff the loss is small, i.e. score = -CE. The candidates are never sent to the target
   (Table 4: no target query per candidate), so a candidate the target misclassifies is treated
   as the paper does: through its (typically large) shadow loss at the true label, not by a
   label test.
Also logged (Fig. 5): AUC of the shadow model's maximum confidence (`auc_maxconf`) and of the
negative normalised entropy -(1/log K) sum p log p (`auc_entropy`), and the shadow model's
agreement with the target on the pool (`pool_agreement`).
No `*_calibrated` numbers: the adversary's shadow model is trained on target labels, not on a
known member set, so there is no shadow member/non-member split to calibrate on.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.label_only.common import auc, eval_subset, label_result
from lit_mia.attacks.label_only.oracle import LabelOracle
from lit_mia.attacks.label_only.settings import TransferSettings  # noqa: F401
from lit_mia.data.datamodule import MembershipDataModule
from lit_mia.data.datasets import DatasetBundle
from lit_mia.data.splits import SETS
from lit_mia.errors import ConfigError, unknown_name
from lit_mia.fitting import quiet
from lit_mia.nets import NETS, build_net
from lit_mia.targets import NaturalTarget, TargetSettings
from lit_mia.training import make_trainer

EVAL_SETS = ("members", "nonmembers")
POOL_COUNT_KEY = {
    "validation": "n_validation",
    "shadow": "n_shadow",
    "probe": "n_probe",
}


def pool_indices(ctx: AttackContext) -> np.ndarray:
    """The split set named by attack.transfer.pool; ConfigError if it meets the eval sets."""
    name = str(ctx.cfg.attack.transfer.pool)
    pool = np.asarray(getattr(ctx.split, name))
    evald = np.r_[ctx.eval_idx["members"], ctx.eval_idx["nonmembers"]]
    common = np.intersect1d(pool, evald)
    if common.size:
        raise ConfigError(
            f"attack.transfer.pool {name!r} overlaps the evaluation set in {common.size} "
            "samples; choose a pool disjoint from members and non-members (shadow, probe, "
            "validation)"
        )
    if pool.size == 0:
        raise ConfigError(f"attack.transfer.pool {name!r} is empty in this split")
    return pool


def relabel(oracle: LabelOracle, x: torch.Tensor) -> torch.Tensor:
    """The target's labels of the pool, one query each."""
    return oracle(x)


def train_shadow(ctx: AttackContext, x: torch.Tensor, y: torch.Tensor) -> torch.nn.Module:
    """Fit the transfer shadow model on (x, y) (Algorithm 1, lines 1-8); eval mode, CPU."""
    cfg, s, b = ctx.cfg, ctx.cfg.attack.transfer, ctx.bundle
    net_name = str(s.net or cfg.net.name)
    width = float(s.width or cfg.net.width)
    seed = int(cfg.seed) + 7919
    pl.seed_everything(seed, workers=True, verbose=False)
    depth = cfg.net.depth if net_name == cfg.net.name else None
    net = build_net(net_name, b.shape, b.n_classes, b.mean, b.std, width=width, depth=depth)
    module = NaturalTarget(net, TargetSettings(lr=float(s.lr)), seed=seed)
    pool = DatasetBundle(f"{b.name}-relabelled", x, y, b.n_classes, b.mean, b.std)
    dm = MembershipDataModule(
        pool, np.arange(len(x)), None, batch_size=int(s.batch_size), seed=seed
    )
    tcfg = OmegaConf.merge(cfg, {"trainer": {"max_epochs": int(s.epochs)}})
    with quiet():
        make_trainer(tcfg, None, False, name="transfer shadow").fit(module, datamodule=dm)
    return module.net.cpu().eval()


@torch.no_grad()
def shadow_statistics(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500):
    """(CE loss at y, max confidence, normalised entropy) of the adversary's own model."""
    logits = torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)]).double()
    logp = F.log_softmax(logits, 1)
    p = logp.exp()
    ce = -logp.gather(1, y.view(-1, 1)).squeeze(1)
    ent = -(p * logp).sum(1) / np.log(logits.shape[1])
    return ce.numpy(), p.amax(1).numpy(), ent.numpy()


def run(ctx: AttackContext) -> AttackResult:
    pool = pool_indices(ctx)
    t = torch.as_tensor(np.array(pool), dtype=torch.long)
    px = ctx.bundle.x[t]
    oracle = LabelOracle(ctx.target, len(pool), budget=1, batch_size=ctx.cfg.attack.batch_size)
    py = relabel(oracle, px)
    shadow = train_shadow(ctx, px, py)
    sub = eval_subset(ctx)
    ce, maxconf, ent = shadow_statistics(shadow, sub.x, sub.y)
    res = label_result(ctx, -ce, sub, losses=ce)
    with torch.no_grad():
        agree = float((shadow(px).argmax(1) == py).float().mean())
    res.metrics.update(
        {
            "auc_maxconf": auc(maxconf, sub.is_member),
            "auc_entropy": auc(-ent, sub.is_member),
            "pool_size": float(len(pool)),
            "pool_agreement": agree,
            "target_queries": float(oracle.total),
        }
    )
    return res


def check(cfg) -> None:
    s = cfg.attack.transfer
    if s.pool not in SETS:
        raise unknown_name("attack.transfer.pool", s.pool, SETS)
    if s.pool in EVAL_SETS:
        raise ConfigError(
            f"attack.transfer.pool {s.pool!r} overlaps the evaluation set (members and "
            "non-members are what is attacked); use shadow, probe or validation"
        )
    key = POOL_COUNT_KEY[s.pool]
    if cfg.data[key] < 1:
        raise ConfigError(f"data.{key} must be >= 1 for attack.transfer.pool={s.pool}")
    if s.net and s.net not in NETS:
        raise unknown_name("attack.transfer.net", s.net, NETS)
    if s.width < 0:
        raise ConfigError(f"attack.transfer.width must be >= 0 (0 = target's), got {s.width}")
    if s.epochs < 1:
        raise ConfigError(f"attack.transfer.epochs must be >= 1, got {s.epochs}")
    if not s.lr > 0:
        raise ConfigError(f"attack.transfer.lr must be > 0, got {s.lr}")
    if s.batch_size < 1:
        raise ConfigError(f"attack.transfer.batch_size must be >= 1, got {s.batch_size}")


__all__ = ["pool_indices", "shadow_statistics", "train_shadow"]
