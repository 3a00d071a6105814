"""The inference classifier: a small MLP telling members from non-members by feature vectors.

Shokri et al. S&P'17 train such "attack models" on shadow models' prediction vectors; Song,
Shokri, Mittal CCS'19 §5.2.5 use one per class on (targeted-)adversarial prediction vectors,
"a 3-layer fully connected neural network with size of hidden neurons equal to 200, 20, and 2"
(the default `hidden=(200, 20)`, ReLU, a 2-way output); Salem et al. NDSS'19 (ML-Leaks) one
hidden layer of 64. Trained with cross-entropy and Adam (lr 1e-3, the settings' default; the
papers do not state the optimiser) on features [N, D] with labels 1 = member, 0 = non-member.

`fit_classifier` runs a quiet Lightning Trainer (no logger, checkpoints, progress bar or model
summary; one device of `accelerator`), seeded: same features + seed = same weights on the CPU.
`member_probability` returns softmax(logits)[:, 1] on new features, `member_log_odds` the same
order as an unsaturated score; `decision_summary` turns scores + the classifier's own decisions
into the attack's metric set (metrics.attack_metrics plus the decision accuracy `acc`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import Tensor, nn

from lit_mia import metrics
from lit_mia.attacks.scoring import configured_metrics
from lit_mia.errors import ConfigError
from lit_mia.fitting import fit_module


class InferenceClassifier(pl.LightningModule):
    """MLP D -> hidden... -> 2 (ReLU); logits[:, 1] is the member class."""

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int] = (200, 20),
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        if n_features < 1:
            raise ConfigError(f"inference classifier needs >= 1 feature, got {n_features}")
        sizes = [int(n_features), *(int(h) for h in hidden)]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], 2))
        self.net = nn.Sequential(*layers)
        self.lr = lr
        self.weight_decay = weight_decay

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def _features(x: ArrayLike) -> Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if t.ndim != 2:
        raise ConfigError(f"features must be 2-D [N, D], got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ConfigError("features contain NaN or infinite values")
    return t


def fit_classifier(
    features: ArrayLike,
    is_member: ArrayLike,
    *,
    hidden: Sequence[int] = (200, 20),
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 128,
    weight_decay: float = 0.0,
    seed: int = 0,
    accelerator: str = "cpu",
    deterministic: bool | str = True,
) -> InferenceClassifier:
    """Train an InferenceClassifier on features [N, D] with is_member [N] (1/0); returns it in
    eval mode on the CPU. Shuffled mini-batches from a generator seeded with `seed`."""
    x = _features(features)
    y = torch.as_tensor(np.asarray(is_member)).long().view(-1)
    if y.numel() != x.shape[0]:
        raise ConfigError(f"features and is_member differ in length: {x.shape[0]} vs {y.numel()}")
    if not ((y == 0) | (y == 1)).all() or y.unique().numel() < 2:
        raise ConfigError("is_member must hold 0/1 with both members and non-members")
    pl.seed_everything(seed, workers=True, verbose=False)
    model = InferenceClassifier(x.shape[1], hidden, lr=lr, weight_decay=weight_decay)
    return fit_module(
        model,
        (x, y),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        deterministic=deterministic,
        accelerator=accelerator,
    )


@torch.no_grad()
def member_probability(model: nn.Module, features: ArrayLike, batch_size: int = 4096) -> np.ndarray:
    """[N] P(member | features) = softmax(model(features))[:, 1], float64, on the CPU."""
    x = _features(features)
    model = model.cpu().eval()
    out = [
        torch.softmax(model(x[i : i + batch_size]).double(), dim=1)[:, 1]
        for i in range(0, x.shape[0], batch_size)
    ]
    return torch.cat(out).numpy() if out else np.empty(0)


@torch.no_grad()
def member_log_odds(model: nn.Module, features: ArrayLike, batch_size: int = 4096) -> np.ndarray:
    """[N] log P(member) - log P(non-member) = logits[:, 1] - logits[:, 0], float64: the same
    order as `member_probability` without its saturation at 1.0 (no artificial ties), > 0 iff
    the classifier decides "member"."""
    x = _features(features)
    model = model.cpu().eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        z = model(x[i : i + batch_size]).double()  # [B, 2]
        out.append(z[:, 1] - z[:, 0])
    return torch.cat(out).numpy() if out else np.empty(0)


def decision_acc_ci(
    decisions: ArrayLike, is_member: ArrayLike, n_resamples: int, level: float, seed: int
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the balanced accuracy 0.5 * (TPR + 1 - FPR) of fixed
    decisions, members and non-members resampled separately (as metrics.bootstrap_ci): a
    resample's TPR is Binomial(n_members, TPR) / n_members, likewise the FPR. Widened to contain
    the point estimate."""
    d = np.asarray(decisions, dtype=bool)
    m = np.asarray(is_member).astype(bool)
    n_pos, n_neg = int(m.sum()), int((~m).sum())
    tpr, fpr = d[m].mean(), d[~m].mean()
    rng = np.random.default_rng(seed)
    accs = 0.5 * (
        rng.binomial(n_pos, tpr, n_resamples) / n_pos
        + 1.0
        - rng.binomial(n_neg, fpr, n_resamples) / n_neg
    )
    lo, hi = np.quantile(accs, ((1.0 - level) / 2.0, (1.0 + level) / 2.0))
    point = 0.5 * (tpr + 1.0 - fpr)
    return float(min(lo, point)), float(max(hi, point))


def decision_summary(
    scores: np.ndarray,
    decisions: np.ndarray,
    is_member: np.ndarray,
    acfg,
    seed: int,
    losses: np.ndarray | None = None,
) -> dict[str, float]:
    """metrics.attack_metrics of `scores` (oracle threshold `*_best`, AUC, TPR at low FPR,
    bootstrap CIs from acfg.bootstrap / acfg.ci_level) plus the attack's own decisions:
    `acc` (balanced), `advantage` = 2 * (acc - 0.5), `decision_tpr`, `decision_fpr`,
    `acc_ci_low` / `acc_ci_high` (`precision` / `recall` stay those of the oracle threshold)."""
    out = configured_metrics(acfg, seed, scores, is_member, losses=losses)
    dm = metrics.decision_metrics(decisions, is_member)
    out.update(
        acc=dm["acc"],
        advantage=2.0 * (dm["acc"] - 0.5),
        decision_tpr=dm["tpr"],
        decision_fpr=dm["fpr"],
    )
    if acfg.bootstrap:
        lo, hi = decision_acc_ci(decisions, is_member, acfg.bootstrap, acfg.ci_level, seed)
        out.update(acc_ci_low=lo, acc_ci_high=hi)
    return {k: float(v) for k, v in out.items()}


__all__ = [
    "InferenceClassifier",
    "decision_acc_ci",
    "decision_summary",
    "fit_classifier",
    "member_log_odds",
    "member_probability",
]
