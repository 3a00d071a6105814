"""The shared LightningModule of every target: optimiser, logging, per-epoch robustness check.

A regime subclasses `TargetModule` and overrides `training_loss(x, y, idx) -> (loss, logits)`.
`idx` holds the global dataset indices of the batch (so a regime can treat a fixed subset of
the training set differently, e.g. CCS'19 mixed PGD). Logged per epoch: `train/loss`,
`train/acc` and, on the target validation set (never non-members), `val/loss`, `val/acc`,
`val/adv_acc` (PGD at the evaluation eps with `val_adv_steps` steps). Run the Trainer with
`inference_mode=False` so PGD can take input gradients inside validation.

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

from lit_mia.perturb.pgd import pgd
from lit_mia.targets import dp, regularizers
from lit_mia.targets.regularizers import Countermeasures


class TargetModule(pl.LightningModule):
    """Base target: holds `net` (raw logits, Normalize first) and the regime's settings."""

    adversarial: ClassVar[bool] = False  # trains against perturbations within target.eps
    iterative: ClassVar[bool] = False  # crafts training examples with target.steps steps

    @classmethod
    def regime_kwargs(cls, t) -> dict:
        """Constructor keywords this regime reads from the `target` config section."""
        return {}

    @classmethod
    def makes_adversarial(cls, t) -> bool:
        """Whether `adversarial_examples` perturbs anything under `target` config `t` (DA needs
        it). Default: PGD at t.eps with t.steps of t.step_size."""
        return t.eps > 0 and t.steps >= 1 and t.step_size > 0

    def __init__(
        self,
        net: nn.Module,
        *,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eval_eps: float = 0.1,
        val_adv_steps: int = 10,
        train_idx: Tensor | None = None,
        seed: int = 0,
        countermeasures: Countermeasures | None = None,
    ) -> None:
        super().__init__()
        self.cm = countermeasures or Countermeasures()
        if self.cm.dp:
            dp.check_net(net)  # ConfigError naming an unsupported layer, before any training
        self.net = net
        self.optimizer_name = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.eval_eps = eval_eps
        self.val_adv_steps = val_adv_steps
        self.seed = seed
        self._train_sums: Tensor | None = None  # [2]: epoch sums of B * loss, correct
        self._train_n = 0  # samples seen this epoch (this rank)
        self._step_adv: tuple[Tensor, Tensor] | None = None  # (x, x_adv) of this step's batch
        self._da_gen: torch.Generator | None = None
        self._dp: dp.DPSGD | None = None
        self.dp_epsilon: float | None = None  # spent epsilon after a DP-SGD fit

    def forward(self, x: Tensor) -> Tensor:
        """Prediction logits g(x)/T (CCS'19 eq. 21): what attacks and the Predictor see."""
        logits = self.net(x)
        return logits if self.cm.temperature == 1.0 else logits / self.cm.temperature

    def adversarial_examples(self, x: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        """The regime's adversarial batch for DA regularisation; regimes that train on their own
        adversarial examples override this. Default: PGD at target.eps with target.steps,
        step_size and random_start (natural and verifiable regimes)."""
        cm, seed = self.cm, self.seed + self.global_rank
        if self._da_gen is None or self._da_gen.device != x.device:
            self._da_gen = torch.Generator(device=x.device).manual_seed(seed)
        return pgd(
            self.net,
            x,
            y,
            cm.da_eps,
            cm.da_steps,
            cm.da_step_size,
            random_start=cm.da_random_start,
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
        cm, terms = self.cm, []
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
        self._train_sums, self._train_n = None, 0

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y, idx = batch
        loss, logits = self.training_loss(x, y, idx)
        if self.cm.penalised:
            loss = loss + self.regularization(x, y, idx)
        self._step_adv = None  # free the batch
        # Epoch sums, logged once in on_train_epoch_end: two self.log calls a step cost ~1 ms
        # of CPU (bench/bench_training.py), 5-10% of a LeNet step. Same weighted epoch means.
        with torch.no_grad():
            correct = (logits.argmax(1) == y).sum()
            sums = torch.stack((loss.detach().float() * y.numel(), correct.float()))  # [2]
        self._train_sums = sums if self._train_sums is None else self._train_sums + sums
        self._train_n += y.numel()
        return loss

    def on_train_epoch_end(self) -> None:
        if self._dp is not None:
            self.log("train/dp_epsilon", self._dp.epsilon(), on_step=False, on_epoch=True)
        if self._train_sums is None:
            return
        local = torch.cat((self._train_sums, self._train_sums.new_tensor([self._train_n])))
        loss_sum, correct, n = self.trainer.strategy.reduce(local, reduce_op="sum")  # all ranks
        self.log("train/loss", loss_sum / n, on_step=False, on_epoch=True, sync_dist=True)
        self.log(
            "train/acc", correct / n, on_step=False, on_epoch=True, sync_dist=True, prog_bar=True
        )
        self._train_sums, self._train_n = None, 0

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        x, y, _ = batch
        logits = self.net(x)
        self.log("val/loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log("val/acc", (logits.argmax(1) == y).float().mean(), sync_dist=True, prog_bar=True)
        if self.eval_eps > 0 and self.val_adv_steps > 0:
            steps = self.val_adv_steps
            x_adv = pgd(self.net, x, y, self.eval_eps, steps, 2.5 * self.eval_eps / steps)
            with torch.no_grad():
                adv_acc = (self.net(x_adv).argmax(1) == y).float().mean()
            self.log("val/adv_acc", adv_acc, sync_dist=True, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = self.net.parameters()
        if self.optimizer_name == "sgd":
            opt = torch.optim.SGD(
                params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        else:
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if not self.cm.dp:
            return opt
        cm = self.cm
        self._dp = dp.DPSGD(cm.dp_noise_multiplier, cm.dp_max_grad_norm, cm.dp_delta, self.seed)
        # the loader Lightning will train on, for the sample rate (a fresh seeded copy)
        return self._dp.make_private(self.net, opt, self.trainer.fit_loop._data_source.dataloader())

    def on_fit_start(self) -> None:
        destroy_process_group_at_exit()

    def on_fit_end(self) -> None:
        if self._dp is not None:
            self.dp_epsilon = self._dp.epsilon()  # final (epsilon, cm.dp_delta) of this fit
            self._dp.detach()


_EXIT_HOOK = False


def destroy_process_group_at_exit() -> None:
    """Destroy a gloo process group before the worker interpreter exits.

    Lightning registers this only for NCCL; a gloo group left to interpreter finalization can
    take a spawned CPU-DDP worker down with `terminate called without an active exception`
    (SIGABRT) after a successful fit, seen here in about half of the ddp_spawn runs.
    """
    global _EXIT_HOOK
    if _EXIT_HOOK or not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    import atexit

    def destroy() -> None:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    atexit.register(destroy)
    _EXIT_HOOK = True
