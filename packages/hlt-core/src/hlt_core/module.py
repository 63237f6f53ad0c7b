"""The LightningModule that composes a model with a task.

It knows components only through their contracts: the model is an ``nn.Module`` with
``out_features``; the task has ``build_decoder``, ``loss``, ``metrics``,
``metric_inputs``, ``predict`` and ``output_transform``. Nothing here imports hlt-models
or hlt-tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import lightning as L
import torch
from torch import nn

from hlt_core.errors import UserError

# Restated by design from hlt_data.batch (its owner), which hlt-core may not import;
# tests/test_architecture.py checks that the restatements agree.
Batch = Mapping[str, torch.Tensor]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class MetricsLike(Protocol):
    """What the module needs of a task's metrics: a torchmetrics ``MetricCollection``."""

    def update(self, *args: Any) -> None: ...
    def compute(self) -> dict[str, Any]: ...
    def reset(self) -> None: ...


class TaskLike(Protocol):
    def build_decoder(self, in_features: int) -> nn.Module: ...
    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor: ...
    def metrics(self, prefix: str) -> MetricsLike: ...
    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]: ...
    def predict(self, outputs: torch.Tensor) -> torch.Tensor: ...
    def output_transform(self) -> nn.Module: ...


def check_model_fits_data(model: nn.Module, dims: Mapping[str, Any] | None) -> None:
    """Fail before training when the model was built for other data.

    Compares the model's ``input_dim`` / ``vocab_size`` with the data's ``dims`` (where
    both exist) and its ``max_len`` with ``dims.seq_len``; the message names both values.
    """
    if not dims:
        return
    for key in ("input_dim", "vocab_size"):
        have, want = getattr(model, key, None), dims.get(key)
        if have is not None and want is not None and have != want:
            raise UserError(f"model.{key}={have} but data.dims.{key}={want}")
    max_len, seq_len = getattr(model, "max_len", None), dims.get("seq_len")
    if max_len is not None and seq_len is not None and max_len < seq_len:
        raise UserError(f"model.max_len={max_len} but data.dims.seq_len={seq_len}")


@dataclass
class EpochState:
    """What the training steps of an epoch accumulate. A plain object: setting an
    attribute of an ``nn.Module`` costs a few microseconds of checks, every step."""

    loss_sum: torch.Tensor | None = None  # the batch-size-weighted loss, on the device
    loss_count: int = 0
    metrics_updated: bool = False
    step_before_batch: int = -1  # global_step when the running batch began


class TaskModule(L.LightningModule):
    """model -> task decoder -> task loss and metrics, with optimizer from config.

    ``optimizer`` is a factory taking the parameters (a Hydra ``_partial_``);
    ``scheduler`` is a Lightning lr-scheduler dict whose ``scheduler`` entry is a
    factory taking the optimizer. ``config`` (the resolved run config, with the data's
    ``dims`` filled) and ``data_state`` (what predicting on new files must repeat: feature
    statistics, label names) are stored in every checkpoint, so a checkpoint can be
    evaluated, exported or used for prediction on its own.
    """

    def __init__(
        self,
        model: nn.Module,
        task: TaskLike,
        optimizer: OptimizerFactory,
        scheduler: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        train_metrics_every_n_steps: int | None = None,
        data_state: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        out_features = getattr(model, "out_features", None)
        if not isinstance(out_features, int):
            raise TypeError(
                f"model {type(model).__name__} must state its feature width as an int "
                "attribute `out_features`"
            )
        self.model = model
        self.task = task
        self.feature_width = out_features
        self.decoder = task.build_decoder(out_features)
        self.transform = task.output_transform()  # no persistent state: checkpoints unchanged
        # one collection per split; a ModuleDict cannot use "train" as a key
        self.train_metrics = task.metrics("train/")
        self.val_metrics = task.metrics("val/")
        self.test_metrics = task.metrics("test/")
        self.optimizer_factory = optimizer
        self.scheduler_config = dict(scheduler) if scheduler else None
        self.run_config = dict(config) if config else None
        self.data_state = dict(data_state) if data_state else None
        self.train_metrics_every_n_steps = train_metrics_every_n_steps
        self._epoch = EpochState()
        # tensors shown by hlt_core.performance.ProgressBar, read only when it refreshes
        self.progress_metrics: dict[str, torch.Tensor] = {}

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Model features, read by the task's decoder; ``mask`` (True at real positions
        of padded sequences) goes to the decoder so that pooling never reads padding."""
        features = self.model(inputs)
        return self.decoder(features) if mask is None else self.decoder(features, mask=mask)

    def _outputs(self, batch: Batch) -> torch.Tensor:
        return self(batch["inputs"], batch.get("mask"))

    def _is_metric_step(self) -> bool:
        """Whether this training batch logs its loss and updates the train metrics: every
        ``train_metrics_every_n_steps`` (by default the trainer's ``log_every_n_steps``)
        and on the last batch of an epoch, so metrics cost nothing on the other steps."""
        if self._trainer is None:
            return True
        every = (
            self.train_metrics_every_n_steps or getattr(self.trainer, "log_every_n_steps", 1) or 1
        )
        return (self.global_step + 1) % every == 0 or self.trainer.is_last_batch

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        outputs = self._outputs(batch)
        loss = self.task.loss(outputs, batch)
        batch_size = batch["inputs"].shape[0]
        # the epoch mean is accumulated on the device: no host sync, no `self.log` call
        epoch = self._epoch
        if epoch.loss_sum is None or epoch.loss_sum.device != loss.device:
            epoch.loss_sum = torch.zeros((), device=loss.device)
            epoch.loss_count = 0
        epoch.loss_sum.add_(loss.detach(), alpha=batch_size)
        epoch.loss_count += batch_size
        if self._is_metric_step():
            # not through `self.log`: hlt's ProgressBar reads `progress_metrics` on refresh
            # and `on_train_batch_end` hands the logging steps' loss to the loggers
            self.progress_metrics["train/loss_step"] = loss.detach()
            self.train_metrics.update(*self.task.metric_inputs(outputs.detach(), batch))
            epoch.metrics_updated = True
        return loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._epoch.step_before_batch = self.global_step

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """``train/loss_step`` to the loggers on the batches where Lightning logs its own
        step metrics (an optimizer step that completes ``log_every_n_steps``, or the
        last before a stop), at the step and epoch Lightning files them under. Not
        through ``self.log``: its bookkeeping costs about 0.2 ms a call on a CPU, a tenth
        of a small model's step; this is one host read, where Lightning would make it."""
        trainer = self._trainer
        stepped = self.global_step != self._epoch.step_before_batch
        if trainer is None or not trainer.loggers or not stepped:
            return
        every = getattr(trainer, "log_every_n_steps", 1)
        due = every and (self.global_step % every == 0 or trainer.should_stop)
        if not (due or getattr(trainer, "fast_dev_run", False)):
            return
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        values = {"train/loss_step": float(loss), "epoch": self.current_epoch}
        for logger in trainer.loggers:
            logger.log_metrics(values, step=self.global_step - 1)
            logger.save()

    def _eval_step(self, batch: Batch, split: str) -> None:
        outputs = self._outputs(batch)
        loss = self.task.loss(outputs, batch)
        getattr(self, f"{split}_metrics").update(*self.task.metric_inputs(outputs, batch))
        self.log(
            f"{split}/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch["inputs"].shape[0],
        )

    def _log_metrics(self, split: str) -> None:
        """Compute a split's metrics once per epoch (torchmetrics syncs them across
        processes itself), log them and reset them."""
        metrics = getattr(self, f"{split}_metrics")
        self.log_dict(metrics.compute())
        metrics.reset()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_train_epoch_end(self) -> None:
        epoch = self._epoch
        if epoch.loss_sum is not None and epoch.loss_count:
            mean = epoch.loss_sum / epoch.loss_count
            self.log("train/loss", mean, sync_dist=True)
            self.progress_metrics["train/loss"] = mean
        if epoch.metrics_updated:
            self._log_metrics("train")
        self._epoch = EpochState()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """What a user reads: the task's output transform of the outputs (class
        probabilities, values in original units), as the export's predictor gives it."""
        return self.transform(self._outputs(batch))

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_config is None:
            return optimizer
        scheduler = dict(self.scheduler_config)
        scheduler["scheduler"] = scheduler["scheduler"](optimizer)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint["hlt_config"] = self.run_config
        if self.data_state is not None:
            checkpoint["hlt_data"] = self.data_state
