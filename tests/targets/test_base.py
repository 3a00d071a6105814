"""TargetModule's per-epoch metrics (torchmetrics): sample-weighted epoch means, reset per epoch,
exact over shards of unequal size (the sum of the per-rank sums, not a mean of per-rank means)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from lit_mia.data.datasets import load_dataset
from lit_mia.perturb.pgd import pgd
from lit_mia.targets import NaturalTarget
from lit_mia.targets.verifiable import IBPSettings, IBPTarget
from tests.helpers.training import fit_tiny, small_net

pytestmark = pytest.mark.filterwarnings("ignore")

TRAIN = torch.arange(100)  # batches of 32, 32, 32, 4: a mean of batch means would differ
VAL = torch.arange(100, 140)  # batches of 32, 8


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


class Recording(NaturalTarget):
    """NaturalTarget that also records, per epoch, each batch's (loss, #correct, size)."""

    def __init__(self, net) -> None:
        super().__init__(net)
        self.batches: dict[int, list[tuple[float, int, int]]] = {}

    def training_loss(self, x, y, idx):
        loss, logits = super().training_loss(x, y, idx)
        correct = int((logits.argmax(1) == y).sum())
        record = (float(loss.detach()), correct, len(y))
        self.batches.setdefault(self.current_epoch, []).append(record)
        return loss, logits


class EpochMetrics(pl.Callback):
    """trainer.callback_metrics after each training epoch (read one hook later: callbacks'
    on_train_epoch_end runs before the module's logging)."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def _record(self, trainer) -> None:
        self.epochs.append({k: float(v) for k, v in trainer.callback_metrics.items()})

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0:
            self._record(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._record(trainer)


def f32_ratio(num: float, den: float) -> float:
    return float(torch.tensor(num, dtype=torch.float32) / torch.tensor(den, dtype=torch.float32))


def test_logged_epoch_metrics_match_a_recomputation(digits):
    pl.seed_everything(0, verbose=False)
    module = Recording(small_net(digits))
    record = EpochMetrics()
    fit_tiny(module, digits, TRAIN.numpy(), epochs=2, val_idx=VAL.numpy(), callbacks=[record])
    assert len(record.epochs) == 2
    for epoch, logged in enumerate(record.epochs):
        batches = module.batches[epoch]  # this epoch's only: the metrics were reset in between
        n = sum(b for _, _, b in batches)
        assert n == len(TRAIN)
        correct = sum(c for _, c, _ in batches)
        assert logged["train/acc"] == f32_ratio(correct, n)  # exact: sum of 0/1 over n
        batch_means = sum(c / b for _, c, b in batches) / len(batches)
        assert logged["train/acc"] != pytest.approx(batch_means, abs=1e-6)
        loss = sum(v * b for v, _, b in batches) / n
        assert logged["train/loss"] == pytest.approx(loss, rel=1e-6)

    # validation ran after the last step: the trained net over the validation set
    net = module.net.eval()
    with torch.no_grad():
        logits = net(digits.x[VAL])
    y = digits.y[VAL]
    correct = int((logits.argmax(1) == y).sum())
    logged = record.epochs[-1]
    assert logged["val/acc"] == f32_ratio(correct, len(VAL))
    assert logged["val/loss"] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-6)
    assert "val/adv_acc" not in logged  # off unless eval_eps and val_adv_steps


def test_val_adv_acc_is_logged_per_sample(digits):
    pl.seed_everything(0, verbose=False)
    module = NaturalTarget(small_net(digits), eval_eps=0.1, val_adv_steps=2)
    trainer = fit_tiny(module, digits, TRAIN.numpy(), epochs=1, val_idx=VAL.numpy())
    logged = trainer.callback_metrics
    adv = float(logged["val/adv_acc"])
    x, y = digits.x[VAL], digits.y[VAL]
    x_adv = pgd(module.net.eval(), x, y, 0.1, 2, 2.5 * 0.1 / 2)  # as validation_step does
    with torch.no_grad():
        correct = int((module.net(x_adv).argmax(1) == y).sum())
    assert adv == pytest.approx(correct / len(VAL), abs=1e-6)
    assert adv * len(VAL) == pytest.approx(round(adv * len(VAL)), abs=1e-4)  # k / 40


def batch(digits, start: int, size: int):
    idx = torch.arange(start, start + size)
    return digits.x[idx], digits.y[idx], idx


def test_unequal_shards_give_the_sample_weighted_mean(digits):
    """Two 'ranks' with shards of 5 and 37 + 11 samples: their metric states combine as the
    DDP sync does (sum of each state), so the epoch value is the mean over all 53 samples."""
    torch.manual_seed(0)
    net = small_net(digits)
    ranks = [NaturalTarget(net), NaturalTarget(net)]
    shards = [[batch(digits, 0, 5)], [batch(digits, 5, 37), batch(digits, 42, 11)]]
    per_batch = []  # (loss, #correct, size, val loss sum)
    for module, shard in zip(ranks, shards, strict=True):
        module.on_train_epoch_start()
        module.on_validation_epoch_start()
        for i, (x, y, idx) in enumerate(shard):
            loss = module.training_step((x, y, idx), i)
            with torch.no_grad():
                logits = net(x)
                module.validation_step((x, y, idx), i)
            correct = int((logits.argmax(1) == y).sum())
            val_sum = float(F.cross_entropy(logits, y, reduction="sum"))
            per_batch.append((float(loss), correct, len(y), val_sum))
    first, second = ranks
    for name in ("train_loss", "train_acc", "val_loss", "val_acc"):
        getattr(first, name).merge_state(getattr(second, name))
    assert not first.val_adv_acc.update_called  # no PGD configured

    n = sum(b for _, _, b, _ in per_batch)
    correct = sum(c for _, c, _, _ in per_batch)
    assert n == 53
    acc = float(first.train_acc.compute())
    assert acc == f32_ratio(correct, n)
    assert float(first.val_acc.compute()) == acc  # same net, same samples (no dropout)
    batch_means = [c / b for _, c, b, _ in per_batch]
    rank_means = [batch_means[0], sum(c for _, c, _, _ in per_batch[1:]) / 48]
    for wrong in (sum(batch_means) / 3, sum(rank_means) / 2):  # what per-mean logging gives
        assert acc != pytest.approx(wrong, abs=1e-4)
    loss = sum(v * b for v, _, b, _ in per_batch) / n
    assert float(first.train_loss.compute()) == pytest.approx(loss, rel=1e-6)
    val_loss = sum(s for *_, s in per_batch) / n
    assert float(first.val_loss.compute()) == pytest.approx(val_loss, rel=1e-6)


def test_epoch_start_resets_and_no_step_is_a_host_sync(digits):
    module = NaturalTarget(small_net(digits))
    x, y, idx = batch(digits, 0, 16)
    module.training_step((x, y, idx), 0)
    assert module.train_acc.update_called
    module.on_train_epoch_start()
    assert not module.train_acc.update_called
    assert not module.train_loss.update_called
    # no NaN check (torchmetrics' default costs a .any() host sync per update)
    for m in (module.train_loss, module.train_acc, module.val_loss, module.val_acc):
        assert m.nan_strategy == "disable"
    # the metric states are not part of the checkpointed weights
    assert all(k.startswith("net.") for k in module.state_dict())


def test_verifiable_robust_loss_is_sample_weighted(digits):
    class Recording(IBPTarget):
        def _record(self, robust, n):  # each batch's robust loss and size
            self.seen = [*getattr(self, "seen", []), (float(robust.detach()), n)]
            super()._record(robust, n)

    pl.seed_everything(0, verbose=False)
    module = Recording(small_net(digits), IBPSettings(warmup_epochs=0.0, ramp_epochs=0.0))
    trainer = fit_tiny(module, digits, TRAIN.numpy(), epochs=1)
    n = sum(b for _, b in module.seen)
    assert n == len(TRAIN)
    expected = sum(v * b for v, b in module.seen) / n
    assert float(trainer.callback_metrics["train/robust_loss"]) == pytest.approx(expected, rel=1e-6)
