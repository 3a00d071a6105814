"""What `lit-mia run` shows while it works: readable in a terminal, quiet in a pipe.

- stdout is a terminal: one status line per model (epoch counter, loss, accuracy) redrawn in
  place with a carriage return, at most a few times a second, never a line per step; long
  attacks (HopSkipJump iterations, shadow and update farms) get the same kind of line. When
  the work finishes the line is replaced by its one-line summary.
- stdout is not a terminal (CI, pipes, `tee`): no progress bars at all; one line per finished
  model (`FitProgress`), per finished attack (`task`) and per finished farm (`steps`), and while
  any of them is still working a line saying where it is every `PIPED_EVERY_S` (30 s), written
  by a `Heartbeat` thread, so a piped `make run` is never silent for longer (a model: its
  epoch, batch and last epoch's metrics; an attack: how long it has run; a farm: i/total).

Only rank 0 writes (the other DDP ranks run the same loops silently). Lightning's own tqdm bar
is always off (training.make_trainer); `trainer.enable_progress_bar=false` silences the
per-model display too.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, TextIO

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

REDRAW_S = 0.25
"""Minimum seconds between two redraws of a terminal status line."""

PIPED_EVERY_S = 30.0
"""Outside a terminal, work still running (a fit, an attack, a farm) says where it is this often
(`Heartbeat`), so a piped `make run` is never silent for longer."""


def interactive(stream: TextIO | None = None) -> bool:
    """True when `stream` (stdout by default) is a terminal."""
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def say(line: str) -> None:
    """One line of finished work (rank 0 only)."""
    if rank_zero_only.rank == 0:
        print(line, flush=True)
        Heartbeat.spoke()


class Status:
    """One status line: redrawn in place in a terminal (throttled), silent elsewhere."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = interactive(self.stream) and rank_zero_only.rank == 0
        self.width = 0
        self.last = 0.0

    def update(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not self.live or (not force and now - self.last < REDRAW_S):
            return
        self.last = now
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def close(self, final: str | None) -> None:
        """Replace the status line by `final` (printed as a line in both modes)."""
        if self.live and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
        if final is not None and rank_zero_only.rank == 0:
            self.stream.write(final + "\n")
            Heartbeat.spoke()
        self.stream.flush()
        self.width = 0


class Heartbeat:
    """Outside a terminal, `text()` as a line whenever nothing was printed for `PIPED_EVERY_S`,
    until `stop()`: a daemon thread, rank 0 only, inert in a terminal (the status line shows the
    same there). Only the innermost running heartbeat speaks (a shadow fit inside an attack says
    its epoch, not the attack its seconds), and the silence is counted from the last line of
    any of them or of a finished piece of work (`Status.close`, `say`), so nesting never
    stretches it. `text` runs on the thread: it must only read what the working thread has
    already prepared."""

    _running: ClassVar[list[Heartbeat]] = []
    _lock: ClassVar[threading.Lock] = threading.Lock()
    last_line: ClassVar[float] = 0.0  # time.monotonic() of the last progress line

    def __init__(self, text: Callable[[], str], stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.text = text
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not interactive(self.stream) and rank_zero_only.rank == 0:
            with self._lock:
                if not self._running:  # the silence starts with the first heartbeat
                    Heartbeat.last_line = time.monotonic()
                self._running.append(self)
            self._thread = threading.Thread(target=self._beat, name="lit-mia-progress", daemon=True)
            self._thread.start()

    @classmethod
    def spoke(cls) -> None:
        """A progress line was just written (resets the silence)."""
        cls.last_line = time.monotonic()

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, PIPED_EVERY_S / 10)):
            with self._lock:
                due = self._running[-1] is self
                due = due and time.monotonic() - Heartbeat.last_line >= PIPED_EVERY_S
                if due:
                    Heartbeat.last_line = time.monotonic()
            if due:
                self.stream.write(self.text().rstrip() + "\n")
                self.stream.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            with self._lock:
                self._running.remove(self)
        self._thread = None


def _value(metrics: dict, key: str) -> float | None:
    v = metrics.get(key)
    return None if v is None else float(v)


def fit_summary(metrics: dict) -> str:
    """`loss 0.123  acc 0.951  val acc 0.930` from a Trainer's callback metrics."""
    parts = []
    for key, short in (
        ("train/loss", "loss"),
        ("train/acc", "acc"),
        ("val/acc", "val acc"),
        ("val/adv_acc", "val adv acc"),
    ):
        v = _value(metrics, key)
        if v is not None:
            parts.append(f"{short} {v:.3f}")
    return "  ".join(parts)


class FitProgress(pl.Callback):
    """The progress display of one model's fit (see the module docstring)."""

    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        self.stream = stream
        self.status: Status | None = None
        self.heartbeat: Heartbeat | None = None
        self.t0 = 0.0
        self.where = ""  # `epoch 3/40  batch 5/8`, set by the training thread
        self.summary = ""  # the last finished epoch's metrics

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.status = Status(self.stream)
        self.t0 = time.perf_counter()
        self.where, self.summary = f"epoch 1/{trainer.max_epochs}", ""
        self.heartbeat = Heartbeat(self._piped_line, self.status.stream)

    def _piped_line(self) -> str:
        """`<name>: epoch 12/40  batch 3/8  loss ...  (31 s)` (the heartbeat's line)."""
        secs = time.perf_counter() - self.t0
        return f"{self.name}: {self.where}  {self.summary}".rstrip() + f"  ({secs:.0f} s)"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.summary = fit_summary(trainer.callback_metrics)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.status is None:
            return
        n = trainer.num_training_batches
        total = f"/{n}" if isinstance(n, int) else ""
        epoch = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
        self.where = f"{epoch}  batch {batch_idx + 1}{total}"
        # a regime logging its epoch metrics in its own on_train_epoch_end (after this
        # callback's) has them here from the next epoch's first batch on
        self.summary = fit_summary(trainer.callback_metrics)
        if self.status.live:
            self.status.update(f"{self.name}: {self.where}  {self.summary}".rstrip())

    def _stop(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._stop()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop()
        if self.status is None:
            return
        secs = time.perf_counter() - self.t0
        epochs = max(1, trainer.current_epoch)  # epochs completed
        summary = fit_summary(trainer.callback_metrics)
        self.status.close(f"trained {self.name}: {epochs} epochs  {summary}  ({secs:.1f} s)")
        self.status = None


class Task:
    """A long piece of work shown as one status line; `done(summary)` sets its final line."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.status = Status(stream)
        self.summary = ""
        self.t0 = time.perf_counter()
        self.status.update(f"{label} ...", force=True)

    def done(self, summary: str) -> None:
        self.summary = summary

    def elapsed(self) -> str:
        return f"{self.label}: running  ({time.perf_counter() - self.t0:.0f} s)"


@contextmanager
def task(label: str, stream: TextIO | None = None) -> Iterator[Task]:
    """`label ...` in a terminal while the body runs, then `label: summary (12.3 s)`; piped, a
    `label: running (31 s)` line every PIPED_EVERY_S meanwhile. On an exception the line is
    cleared and nothing is printed (the error says what happened)."""
    t = Task(label, stream)
    beat = Heartbeat(t.elapsed, t.status.stream)
    try:
        yield t
    except BaseException:
        beat.stop()
        t.status.close(None)
        raise
    beat.stop()
    secs = time.perf_counter() - t.t0
    sep = ": " if t.summary else ""
    t.status.close(f"{label}{sep}{t.summary}  ({secs:.1f} s)")


def steps(items: Iterable[Any], label: str, total: int | None = None) -> Iterator[Any]:
    """Yield `items`, showing `label: i/total` in a terminal (piped: every PIPED_EVERY_S); when
    the loop ends (or is left early), one line `label: n/total (12.3 s)` in both modes."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    of = f"/{total}" if total is not None else ""
    status, n, t0 = Status(), 0, time.perf_counter()
    beat = Heartbeat(lambda: f"{label}: {n}{of}  ({time.perf_counter() - t0:.0f} s)")
    try:
        for item in items:
            status.update(f"{label}: {n}{of}")
            yield item
            n += 1
    finally:
        beat.stop()
        status.close(f"{label}: {n}{of}  ({time.perf_counter() - t0:.1f} s)")


class Stage:
    """What a long command is doing between its fits and attacks (`stages`)."""

    def __init__(self, label: str, text: str) -> None:
        self.label, self.text, self.t0 = label, text, time.perf_counter()

    def set(self, text: str) -> None:
        self.text = text

    def line(self) -> str:
        return f"{self.label}: {self.text}  ({time.perf_counter() - self.t0:.0f} s)"


@contextmanager
def stages(label: str, first: str) -> Iterator[Stage]:
    """Piped, `label: <stage> (N s)` every PIPED_EVERY_S while no fit, attack or farm inside
    is speaking (the heartbeat is the outermost): the set-up, logging and comparing between
    them are not silent either. Prints nothing else, in either mode."""
    stage = Stage(label, first)
    beat = Heartbeat(stage.line)
    try:
        yield stage
    finally:
        beat.stop()


def attack_summary(metrics: dict[str, float]) -> str:
    """The headline numbers of one attack's metrics for its finished line."""
    parts = []
    for key, short in (
        ("auc", "auc"),
        ("acc_best", "acc"),
        ("tpr_at_fpr_0.01", "tpr@1%fpr"),
        ("acc", "acc"),
        ("mse", "mse"),
    ):
        v = metrics.get(key)
        if v is not None and short not in {p.split()[0] for p in parts}:
            parts.append(f"{short} {float(v):.3f}")
    return "  ".join(parts[:3])


__all__ = [
    "FitProgress",
    "Heartbeat",
    "Stage",
    "Status",
    "Task",
    "attack_summary",
    "fit_summary",
    "interactive",
    "say",
    "stages",
    "steps",
    "task",
]
