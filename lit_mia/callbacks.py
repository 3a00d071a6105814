"""Leakage over training (CCS'19 §5.2.4, Fig. 3/4): membership inference during training.

`LeakageCallback` evaluates, every `every` epochs, the I_B and I_A attacks (oracle threshold)
on a fixed member / non-member subset, beside the accuracy and PGD accuracy of both subsets, and
logs them through the Trainer's logger with step = epoch, so the MLflow charts of a run show
leakage growing as the model fits its training set:

    leakage/ib/acc_best, leakage/ib/auc, leakage/ia/acc_best, leakage/ia/auc,
    leakage/train_acc, leakage/test_acc, leakage/adv_train_acc, leakage/adv_test_acc

It runs on every rank (the same deterministic numbers) and logs from rank 0 only; the module's
training mode is restored afterwards. `history` keeps every evaluation for the run's plot.
The non-member subset is only observed, never used for training or model selection.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor

from lit_mia import metrics
from lit_mia.attacks.confidence import confidence_and_loss
from lit_mia.predictor import Predictor


class LeakageCallback(pl.Callback):
    """I_B / I_A inference accuracy and AUC every `every` epochs on fixed subsets."""

    def __init__(
        self,
        members: tuple[Tensor, Tensor],
        nonmembers: tuple[Tensor, Tensor],
        every: int,
        pgd_args: dict,
        batch_size: int = 500,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.sets = {"members": members, "nonmembers": nonmembers}
        self.every = every
        self.pgd_args = pgd_args
        self.batch_size = batch_size
        self.history: list[dict[str, float]] = []

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """The leakage metrics of `model` now (eval mode inside, mode restored)."""
        was_training = model.training
        try:
            pred = Predictor(model, self.sets, self.batch_size)
            out = {
                "leakage/train_acc": pred.accuracy("members"),
                "leakage/test_acc": pred.accuracy("nonmembers"),
                "leakage/adv_train_acc": pred.accuracy("members", **self.pgd_args),
                "leakage/adv_test_acc": pred.accuracy("nonmembers", **self.pgd_args),
            }
            for attack, fn in (
                ("ib", pred.logits),
                ("ia", lambda n: pred.adv_logits(n, **self.pgd_args)),
            ):
                s_in, _ = confidence_and_loss(fn("members"), pred.labels("members"))
                s_out, _ = confidence_and_loss(fn("nonmembers"), pred.labels("nonmembers"))
                scores = [*s_in, *s_out]
                is_member = [1] * len(s_in) + [0] * len(s_out)
                out[f"leakage/{attack}/acc_best"] = metrics.best_threshold(scores, is_member)[1]
                out[f"leakage/{attack}/auc"] = metrics.roc_auc(scores, is_member)
        finally:
            model.train(was_training)
        return out

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every and epoch != trainer.max_epochs:
            return
        out = self.evaluate(pl_module)
        self.history.append({"epoch": float(epoch), **out})
        if trainer.logger is not None and trainer.is_global_zero:
            trainer.logger.log_metrics(out, step=trainer.current_epoch)  # as train/* (0-based)


__all__ = ["LeakageCallback"]
