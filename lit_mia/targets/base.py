"""The shared LightningModule of every target: optimiser, logging, per-epoch robustness check.

A regime subclasses `TargetModule` and overrides `training_loss(x, y, idx) -> (loss, logits)`.
`idx` holds the global dataset indices of the batch (so a regime can treat a fixed subset of
the training set differently, e.g. CCS'19 mixed PGD). Logged per epoch: `train/loss`,
`train/acc` and, on the target validation set (never non-members), `val/loss`, `val/acc`,
`val/adv_acc` (PGD at the evaluation eps with `val_adv_steps` steps): sample-weighted epoch
means kept in torchmetrics `MeanMetric`s (`epoch_mean`), exact over DDP ranks of unequal size.
Run the Trainer with `inference_mode=False` so PGD can take input gradients inside validation.

Settings: every regime declares a settings dataclass (`Settings`, extending `TargetSettings`
below) with its paper defaults; the `target` config section is that class (lit_mia/config/ builds
the schema from it), and the constructor takes an instance: `PGDTarget(net, PGDSettings(eps=0.2))`.

Countermeasures (regularizers.py, dp.py) apply to every regime from here: `forward` divides the
logits by the temperature (prediction time only: losses and validation call `self.net`), the
DA / L1 / L2 terms are added to the regime's loss in `training_step`, and DP-SGD replaces the
optimiser in `configure_optimizers` (`train/dp_epsilon` logged per epoch). A regime with
adversarial examples of its own overrides `adversarial_examples(x, y, idx)` and obtains them in
`training_loss` through `step_adversarial`, which computes them once per step, so DA
regularisation reuses them. Under DP-SGD, attack before the loss forwards (see dp.py).
"""

from __future__ import annotations

from typing import ClassVar

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric

from lit_mia.perturb.pgd import pgd
from lit_mia.targets import dp, regularizers
from lit_mia.targets.settings import OPTIMIZERS, PerturbedSettings, TargetSettings  # noqa: F401


class TargetModule(pl.LightningModule):
    """Base target: holds `net` (raw logits, Normalize first) and the regime's settings."""

    Settings: ClassVar[type[TargetSettings]] = TargetSettings
    adversarial: ClassVar[bool] = False  # trains against perturbations within target.eps

    def __init__(
        self,
        net: nn.Module,
        settings: TargetSettings | None = None,
        *,
        eval_eps: float = 0.0,
        val_adv_steps: int = 0,
        train_idx: Tensor | None = None,
        seed: int = 0,
        net_name: str = "net",
    ) -> None:
        """settings: the regime's `Settings` (its defaults when None). eval_eps, val_adv_steps:
        the per-epoch validation PGD (off by default); train_idx: the global dataset indices of
        the training set; seed: the regime's own generators; net_name: for error messages."""
        super().__init__()
        self.settings = settings if settings is not None else self.Settings()
        if self.settings.dp:
            dp.check_net(net)  # ConfigError naming an unsupported layer, before any training
        self.net = net
        self.net_name = net_name
        self.optimizer_name = self.settings.optimizer
        self.lr = self.settings.lr
        self.momentum = self.settings.momentum
        self.weight_decay = self.settings.weight_decay
        self.eval_eps = eval_eps
        self.val_adv_steps = val_adv_steps
        self.seed = seed
        # Per-epoch metrics as torchmetrics objects: moved with the module, their sums
        # all-reduced over DDP ranks at compute (exact with unequal shards), reset by Lightning
        # after logging. Accuracies are means of per-sample 0/1 correctness: correct / n,
        # exact in float32 up to 2**24 samples and free of the class count.
        self.train_loss, self.train_acc = epoch_mean(), epoch_mean()
        self.val_loss, self.val_acc, self.val_adv_acc = epoch_mean(), epoch_mean(), epoch_mean()
        self._step_adv: tuple[Tensor, Tensor] | None = None  # (x, x_adv) of this step's batch
        self._da_gen: torch.Generator | None = None
        self._dp: dp.DPSGD | None = None
        self.dp_epsilon: float | None = None  # spent epsilon after a DP-SGD fit

    def forward(self, x: Tensor) -> Tensor:
        """Prediction logits g(x)/T (CCS'19 eq. 21): what attacks and the Predictor see."""
        logits = self.net(x)
        return self.temper(logits)

    def temper(self, logits: Tensor) -> Tensor:
        """Logits divided by the prediction temperature T (unchanged when T = 1)."""
        t = self.settings.temperature
        return logits if t == 1.0 else logits / t

    def adversarial_examples(self, x: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        """The regime's adversarial batch for DA regularisation; regimes that train on their own
        adversarial examples override this. Default: PGD at target.eps with target.steps,
        step_size and random_start (natural and verifiable regimes)."""
        s, seed = self.settings, self.seed + self.global_rank
        if self._da_gen is None or self._da_gen.device != x.device:
            self._da_gen = torch.Generator(device=x.device).manual_seed(seed)
        return pgd(
            self.net,
            x,
            y,
            float(s.eps),
            int(s.steps),
            float(s.step_size),
            random_start=bool(s.random_start),
            generator=self._da_gen,
        )

    def step_adversarial(self, x: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        """`adversarial_examples` of batch `x`, computed once per batch: the regime's loss and
        the DA term of one training step share them (keyed by the batch tensor itself, so a
        new batch never sees stale examples)."""
        if self._step_adv is None or self._step_adv[0] is not x:
            self._step_adv = (x, self.adversarial_examples(x, y, idx))
        return self._step_adv[1]

    def regularization(self, x: Tensor, y: Tensor, idx: Tensor) -> Tensor | None:
        """DA + L1 + L2 terms added to the regime's loss (None when all are off)."""
        cm, terms = self.settings, []
        if cm.da_weight > 0:
            x_adv = self.step_adversarial(x, y, idx)
            terms.append(cm.da_weight * regularizers.da_regularizer(self.net(x), self.net(x_adv)))
        if cm.l1 > 0:
            terms.append(cm.l1 * regularizers.weight_l1(self.net))
        if cm.l2 > 0:
            terms.append(cm.l2 * regularizers.weight_l2(self.net))
        return torch.stack(terms).sum() if terms else None

    def training_loss(self, x: Tensor, y: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Natural loss (CCS'19 eq. 1): mean CE on benign inputs. Returns (loss, logits)."""
        logits = self.net(x)
        return F.cross_entropy(logits, y), logits

    def on_train_epoch_start(self) -> None:
        self.train_loss.reset()
        self.train_acc.reset()

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y, idx = batch
        loss, logits = self.training_loss(x, y, idx)
        if self.settings.penalised:
            loss = loss + self.regularization(x, y, idx)
        self._step_adv = None  # free the batch
        # Metric updates only (~40 us, no host sync), logged in on_train_epoch_end: two
        # self.log calls a step cost ~1 ms of CPU, 5-10% of a LeNet step (bench_training.py).
        # The loss is the regime's batch mean, counted once per sample (MeanMetric's `weight`
        # is dropped under nan_strategy="disable", torchmetrics#3434).
        self.train_loss.update(loss.detach().expand(y.numel()))
        self.train_acc.update((logits.argmax(1) == y).float())
        return loss

    def on_train_epoch_end(self) -> None:
        if self._dp is not None:
            self.log("train/dp_epsilon", self._dp.epsilon(), on_step=False, on_epoch=True)
        if self.train_loss.update_called:  # Lightning computes (synced), logs and resets them
            self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
            self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_start(self) -> None:
        for m in (self.val_loss, self.val_acc, self.val_adv_acc):
            m.reset()

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        x, y, _ = batch
        logits = self.net(x)
        self.val_loss.update(F.cross_entropy(logits, y, reduction="none"))  # per sample
        self.val_acc.update((logits.argmax(1) == y).float())
        if self.eval_eps > 0 and self.val_adv_steps > 0:
            steps = self.val_adv_steps
            x_adv = pgd(self.net, x, y, self.eval_eps, steps, 2.5 * self.eval_eps / steps)
            with torch.no_grad():
                self.val_adv_acc.update((self.net(x_adv).argmax(1) == y).float())

    def on_validation_epoch_end(self) -> None:
        if not self.val_loss.update_called:
            return
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)
        if self.val_adv_acc.update_called:
            self.log("val/adv_acc", self.val_adv_acc, on_step=False, on_epoch=True, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = self.net.parameters()
        if self.optimizer_name == "sgd":
            opt = torch.optim.SGD(
                params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        else:
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if not self.settings.dp:
            return opt
        cm = self.settings
        self._dp = dp.DPSGD(cm.dp_noise_multiplier, cm.dp_max_grad_norm, cm.dp_delta, self.seed)
        # the loader Lightning will train on, for the sample rate (a fresh seeded copy)
        return self._dp.make_private(self.net, opt, self.trainer.fit_loop._data_source.dataloader())

    def on_fit_end(self) -> None:
        if self._dp is not None:
            self.dp_epsilon = self._dp.epsilon()  # final (epsilon, cm.dp_delta) of this fit
            self._dp.detach()


def epoch_mean() -> MeanMetric:
    """A per-epoch mean of the elements of every update (sum / count), summed over DDP ranks
    at compute. NaN check off: it costs a host-device sync per update (a NaN shows as the mean).
    Pass per-sample values, no `weight`: "disable" drops it (torchmetrics#3434)."""
    return MeanMetric(nan_strategy="disable")
