"""Training progress a person can read wherever stdout goes.

On a terminal, a TQDM bar (``hlt_core.training.performance.ProgressBar``). Anywhere else (a pipe,
``nohup``, a SLURM ``.out`` file) a bar's refreshes pile up as fragments, so progress is
one log line per epoch, plus one every ``every_seconds`` within a long epoch:

    epoch 3 done: step 400, 2150 samples/s, train/loss 0.4312, val/acc 0.8801, val/loss 0.4407
    epoch 4: step 450 (batch 50 of 100), 2143 samples/s, train/loss_step 0.4291

The lines go through logging, so ``app.log`` holds them too.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks.progress import ProgressBar as LightningProgressBar

from hlt_core.contracts import INPUTS
from hlt_core.training.performance import ProgressBar

log = logging.getLogger(__name__)


def progress_bar(refresh_rate: int = 1, every_seconds: float = 60.0) -> LightningProgressBar:
    """The TQDM bar (refreshed every ``refresh_rate`` steps) when stdout is a terminal,
    else ``ProgressLines`` (a line per epoch and every ``every_seconds``)."""
    if sys.stdout.isatty():
        return ProgressBar(refresh_rate=refresh_rate)
    return ProgressLines(every_seconds)


def _number(value: Any) -> str:
    return f"{float(value):.4g}"


class ProgressLines(LightningProgressBar):
    """Progress as log lines (see the module doc). Per step it only counts samples and
    reads the clock; values are read on the lines' own schedule."""

    def __init__(self, every_seconds: float = 60.0) -> None:
        super().__init__()
        self.every_seconds = every_seconds
        self._enabled = True
        self._start = self._last_line = 0.0
        self._samples = 0
        self._done: tuple[int, int, float] | None = None  # (epoch, step, samples/s) not yet told

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _rate(self) -> float:
        elapsed = time.monotonic() - self._start
        return self._samples / elapsed if elapsed > 0 else 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._tell_done(trainer)
        self._start = self._last_line = time.monotonic()
        self._samples = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        inputs = batch.get(INPUTS) if isinstance(batch, dict) else None
        self._samples += inputs.shape[0] if isinstance(inputs, torch.Tensor) else 1
        now = time.monotonic()
        if not self._enabled or now - self._last_line < self.every_seconds:
            return
        self._last_line = now
        values = getattr(pl_module, "progress_metrics", {})
        parts = [
            f"epoch {trainer.current_epoch}: step {trainer.global_step} "
            f"(batch {batch_idx + 1} of {self.total_train_batches})",
            f"{self._rate():.0f} samples/s",
            *(f"{key} {_number(value)}" for key, value in sorted(values.items())),
        ]
        log.info(", ".join(parts))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the epoch's train metrics are computed after this hook: told when they are
        self._done = (trainer.current_epoch, trainer.global_step, self._rate())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._tell_done(trainer)

    def _tell_done(self, trainer: L.Trainer) -> None:
        if self._done is None:
            return
        epoch, step, rate = self._done
        self._done = None
        if not self._enabled:
            return
        metrics = {
            key: value
            for key, value in trainer.callback_metrics.items()
            if key.startswith(("train/", "val/"))
            and not key.endswith("_step")
            and (not isinstance(value, torch.Tensor) or value.numel() == 1)
        }
        parts = [
            f"epoch {epoch} done: step {step}",
            f"{rate:.0f} samples/s",
            *(f"{key} {_number(value)}" for key, value in sorted(metrics.items())),
        ]
        log.info(", ".join(parts))
