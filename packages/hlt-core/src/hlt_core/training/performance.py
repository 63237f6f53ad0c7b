"""Performance settings of a run, applied once by ``hlt_core.run.run``.

- ``matmul_precision`` (``highest``, ``high``, ``medium``; null leaves torch's default):
  ``torch.set_float32_matmul_precision``; ``high`` lets float32 matmuls use TF32 on
  Ampere and later GPUs.
- ``compile`` (bool) and ``compile_options`` (keyword arguments of ``torch.compile``):
  compile the model and the decoder in place (``nn.Module.compile``), so parameter names
  and checkpoints are unchanged.
- ``train_metrics_every_n_steps``: how often the train metrics are updated (null: on the
  trainer's logging steps and the last batch of each epoch; 1: every batch).

Mixed precision is Lightning's own ``trainer.precision`` (presets ``trainer=gpu_bf16`` and
``trainer=gpu_fp16``); pinned memory is ``data.pin_memory=true`` and Lightning already
moves batches with ``non_blocking=True`` to CUDA.

``ModelCheckpoint`` is Lightning's, with its ``state_key`` (the name of its state in a
checkpoint, built from its settings) computed once: Lightning reads it at every hook it
calls, six times a step, and building it costs more than the hook.

``ProgressBar`` is Lightning's TQDM bar that also shows the module's ``progress_metrics``
(tensors), converting them to numbers only when the bar refreshes: values logged with
``prog_bar=True`` are converted with ``.item()`` on every batch by Lightning, a host-device
synchronisation per step on a GPU.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import Any

import lightning as L
import torch
from lightning.pytorch import callbacks
from lightning.pytorch.callbacks import TQDMProgressBar

from hlt_core.errors import UserError
from hlt_core.training.callbacks import skip_hooks
from hlt_core.training.module import TaskModule

MATMUL_PRECISIONS = ("highest", "high", "medium")


def apply_performance_settings(cfg: Any, module: TaskModule) -> None:
    """Apply the run's ``matmul_precision`` and ``compile`` keys (see the module doc)."""
    precision = cfg.matmul_precision
    if precision is not None:
        if precision not in MATMUL_PRECISIONS:
            raise UserError(
                f"matmul_precision={precision}: choose one of {', '.join(MATMUL_PRECISIONS)}"
            )
        torch.set_float32_matmul_precision(precision)
    if cfg.compile:
        options = dict(cfg.compile_options or {})
        module.model.compile(**options)
        module.decoder.compile(**options)


class ModelCheckpoint(callbacks.ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` with its ``state_key`` computed once (its settings
    do not change after ``__init__``) and no per-batch hook when it saves only at
    validation or epoch ends; saves and checkpoints are the same.

    Loading the state of a checkpoint written in another run folder (evaluating it,
    predicting with it) keeps Lightning's behaviour, without its "dirpath has changed"
    warning: each run has its own folder, so that is always so, and the top-k record it
    drops belongs to the other folder."""

    @cached_property
    def state_key(self) -> str:
        return super().state_key

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._every_n_train_steps < 1 and self._train_time_interval is None:
            skip_hooks(self, ["on_train_batch_end"])  # its per-batch check saves nothing

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The dirpath has changed from ")
            super().load_state_dict(state_dict)


class ProgressBar(TQDMProgressBar):
    """TQDM bar that shows ``pl_module.progress_metrics`` (read only on refresh)."""

    def get_metrics(
        self, trainer: L.Trainer, pl_module: L.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        items = super().get_metrics(trainer, pl_module)
        for key, value in getattr(pl_module, "progress_metrics", {}).items():
            items[key] = float(value)
        return items
