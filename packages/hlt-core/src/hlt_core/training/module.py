"""The LightningModule that composes a model with a task.

It knows components only through their promises in ``hlt_core.contracts``: the model is
an ``nn.Module`` stating ``out_features`` (and ``members`` for an ensemble,
``hlt_core.training.ensembles``); the task builds the decoder and owns the loss, the
metrics and the output transform. Nothing here imports hlt-models or hlt-tasks.

The module also watches its training loss: a NaN or Inf stops training
(``NonFiniteLossError``, naming the first such step) before any checkpoint is written after
it. It keeps a reference to each step's loss and checks them together, adding them to the
epoch's sum, where the host waits anyway: on logging steps, at the end of an epoch and
before a save (and after ``UNCHECKED_LOSSES`` steps at most).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
from torch import nn

from hlt_core.contracts import INPUTS, MASK, Batch, Model, ResumableMetrics, Task
from hlt_core.errors import UserError
from hlt_core.training.ensembles import MemberDecoder, build_decoder, member_loss

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
DATA_FACTS_KEY = "hlt_data_facts"  # the checkpoint's data facts (``DataModule.data_facts``)
OLD_DATA_FACTS_KEY = "hlt_data"  # hlt-core 0.3 and before: the facts without dims
TRAIN_EPOCH_KEY = "hlt_train_epoch"  # a checkpoint saved mid-epoch: that epoch's sums so far
SAVE_LOGS_SECONDS = 5.0  # the loggers' files are at most this far behind during an epoch
# at most this many steps' losses wait for their check, whatever log_every_n_steps is:
# each holds a device tensor, and a NaN stops the run at most this many steps late
UNCHECKED_LOSSES = 256


def check_model_fits_data(model_config: Mapping[str, Any], dims: Mapping[str, Any] | None) -> None:
    """Fail before training when the model is configured for other data.

    Compares the model's ``input_dim`` / ``vocab_size`` with the data's ``dims`` (where
    both are set) and its ``max_len`` with ``dims.seq_len``; the message names both values.
    """
    if not dims:
        return
    for key in ("input_dim", "vocab_size"):
        have, want = model_config.get(key), dims.get(key)
        if have is not None and want is not None and have != want:
            raise UserError(f"model.{key}={have} but data.dims.{key}={want}")
    max_len, seq_len = model_config.get("max_len"), dims.get("seq_len")
    if max_len is not None and seq_len is not None and max_len < seq_len:
        raise UserError(f"model.max_len={max_len} but data.dims.seq_len={seq_len}")


def checkpoint_data_facts(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The data facts a checkpoint carries, from either key it has been written under."""
    if DATA_FACTS_KEY in checkpoint:
        return dict(checkpoint[DATA_FACTS_KEY])
    if OLD_DATA_FACTS_KEY not in checkpoint:
        return None
    config = checkpoint.get("hlt_config") or {}
    dims = (config.get("data") or {}).get("dims")
    return {"dims": dict(dims or {}), **checkpoint[OLD_DATA_FACTS_KEY]}


class NonFiniteLossError(UserError):
    """The training loss became NaN or Inf; the message names the step."""


def _loss_values(losses: list[torch.Tensor]) -> list[float]:
    """Scalar losses as numbers. On an accelerator one host read of them stacked. On the
    CPU each is read alone: nothing to wait for, and after a step whose tensors fill the
    cache a stack and a sum cost 40-80 µs (their code and data are cold), the reads ~10 µs."""
    if losses[0].device.type == "cpu":
        return [float(loss) for loss in losses]
    return torch.stack(losses).tolist()


def _loss_total(device: torch.device) -> torch.Tensor:
    """(sum of loss x batch size, examples), zero: in float64 (MPS has none) so that the
    order in which batches and ranks are summed does not show."""
    dtype = torch.float32 if device.type == "mps" else torch.float64
    return torch.zeros(2, dtype=dtype, device=device)


@dataclass
class EpochState:
    """What the training steps of an epoch accumulate. A plain object: setting an
    attribute of an ``nn.Module`` costs a few microseconds of checks, every step."""

    number: int = 0  # the epoch
    loss_sum: float = 0.0  # of the checked steps' losses, times their batch sizes
    loss_count: int = 0  # their examples
    metrics_updated: bool = False
    step_before_batch: int = -1  # global_step when the running batch began
    # (loss, step, batch, batch size) of the steps not checked yet
    unchecked: list[tuple[torch.Tensor, int, int, int]] = field(default_factory=list)


class TaskModule(L.LightningModule):
    """model -> task decoder -> task loss and metrics, with optimizer from config.

    ``optimizer`` is a factory taking the parameters (a Hydra ``_partial_``);
    ``scheduler`` is a Lightning lr-scheduler dict whose ``scheduler`` entry is a
    factory taking the optimizer. ``config`` (the resolved run config, with the data's
    ``dims`` filled) and ``data_facts`` (``DataModule.data_facts``: what predicting on new
    files must repeat) are stored in every checkpoint, so a checkpoint can be evaluated,
    exported or used for prediction on its own; evaluating one reads its data facts back.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        optimizer: OptimizerFactory,
        scheduler: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        train_metrics_every_n_steps: int | None = None,
        data_facts: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, Model) or not isinstance(model.out_features, int):
            raise TypeError(
                f"model {type(model).__name__} must state its feature width as an int "
                "attribute `out_features`"
            )
        self.model = model
        self.task = task
        self.feature_width = model.out_features
        self.decoder = build_decoder(model, task, self.feature_width)
        self.transform = task.output_transform()  # no persistent state: checkpoints unchanged
        # one collection per split; a ModuleDict cannot use "train" as a key
        self.train_metrics = task.metrics("train/")
        self.val_metrics = task.metrics("val/")
        self.test_metrics = task.metrics("test/")
        self.optimizer_factory = optimizer
        self.scheduler_config = dict(scheduler) if scheduler else None
        self.run_config = dict(config) if config else None
        self.data_facts = dict(data_facts or {})
        self.train_metrics_every_n_steps = train_metrics_every_n_steps
        self._metrics_every = 1  # the steps between train metric updates, read at the start
        self._optimizer_steps: Any = None  # the trainer's count of them, found at the start
        self._batches: Any = None  # the trainer's batch progress, likewise
        self._epoch = EpochState()
        self._logs_saved_at = -SAVE_LOGS_SECONDS  # the first logging step saves
        self._eval_loss: torch.Tensor | None = None  # (sum of loss x batch size, examples)
        # tensors shown by hlt_core.training.performance.ProgressBar, read only when it refreshes
        self.progress_metrics: dict[str, torch.Tensor] = {}

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Model features, read by the task's decoder; ``mask`` (True at real positions
        of padded sequences) goes to the decoder so that pooling never reads padding."""
        features = self.model(inputs)
        return self.decoder(features) if mask is None else self.decoder(features, mask=mask)

    def _outputs(self, batch: Batch) -> torch.Tensor:
        return self(batch[INPUTS], batch.get(MASK))

    def _training_outputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, loss): an ensemble's members each learn from their own loss, while
        the metrics read their combined outputs, as evaluation does."""
        if not isinstance(self.decoder, MemberDecoder):
            outputs = self._outputs(batch)
            return outputs, self.task.loss(outputs, batch)
        members = self.decoder.members(self.model(batch[INPUTS]), batch.get(MASK))
        return self.decoder.combiner(members), member_loss(self.task, members, batch)

    def on_train_start(self) -> None:
        """Read once a fit: the cadence of the train metrics (every
        ``train_metrics_every_n_steps``, by default the trainer's ``log_every_n_steps``, and
        on the last batch of an epoch, so that metrics cost nothing on the other steps), and
        the trainer's count of optimizer steps, which is ``trainer.global_step`` under the
        automatic optimization this module uses, and its batch progress (``is_last_batch``):
        read every step, without the chains of properties in front of them."""
        trainer = self.trainer
        every = getattr(trainer, "log_every_n_steps", 1)
        self._metrics_every = self.train_metrics_every_n_steps or every or 1
        self._optimizer_steps = trainer.fit_loop.epoch_loop.automatic_optimization.optim_progress
        self._batches = trainer.fit_loop.epoch_loop.batch_progress  # its is_last_batch
        self.on_train_epoch_start()  # a run resumed mid-epoch does not start it again

    def on_train_end(self) -> None:
        self._optimizer_steps = self._batches = None

    def _global_step(self, trainer: L.Trainer) -> int:
        steps = self._optimizer_steps
        return trainer.global_step if steps is None else int(steps.optimizer_steps)

    def on_train_epoch_start(self) -> None:
        self._epoch.number = self.current_epoch

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        outputs, loss = self._training_outputs(batch)
        detached = loss.detach()
        epoch = self._epoch
        trainer = self._trainer
        if trainer is None:  # outside a fit: every batch updates the metrics
            metric_step = True
        else:
            # read once a step: the optimizer steps after this, so it is the step before
            epoch.step_before_batch = step = self._global_step(trainer)
            # no device op: the losses join the epoch's sum where they are checked
            epoch.unchecked.append((detached, step, batch_idx, batch[INPUTS].shape[0]))
            if len(epoch.unchecked) >= UNCHECKED_LOSSES:
                self.check_finite_loss()
            batches = self._batches
            metric_step = (step + 1) % self._metrics_every == 0 or (
                trainer.is_last_batch if batches is None else batches.is_last_batch
            )
        if metric_step:
            # not through `self.log`: hlt's ProgressBar reads `progress_metrics` on refresh
            # and `on_train_batch_end` hands the logging steps' loss to the loggers
            self.progress_metrics["train/loss_step"] = detached
            self.train_metrics.update(*self.task.metric_inputs(outputs.detach(), batch))
            epoch.metrics_updated = True
        return loss

    def check_finite_loss(self) -> None:
        """Raise ``NonFiniteLossError`` if a training loss since the last check was NaN or
        Inf, naming the first such step, and add them to the epoch's sum (for the mean
        ``train/loss``: no host sync a step, no `self.log` call). The losses are read at
        once (``_loss_values``) and summed, times their batch sizes, in Python's float64
        rounded once (``math.fsum``), so the order of the batches does not show."""
        epoch = self._epoch
        unchecked = epoch.unchecked
        if not unchecked:
            return
        values = _loss_values([loss for loss, *_ in unchecked])
        for value, (_, step, batch, _) in zip(values, unchecked, strict=True):
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"training loss is {value} at step {step} "
                    f"(epoch {epoch.number}, batch {batch}); run stopped"
                )
        sizes = [size for *_, size in unchecked]
        epoch.loss_sum += math.fsum(v * n for v, n in zip(values, sizes, strict=True))
        epoch.loss_count += sum(sizes)
        unchecked.clear()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """On the batches where Lightning logs its own step metrics (an optimizer step that
        completes ``log_every_n_steps``, or the last before a stop): the losses since the
        last check are checked (``check_finite_loss``), and ``train/loss_step`` goes to the
        loggers, at the step and epoch Lightning files them under. Not through
        ``self.log``: its bookkeeping costs about 0.2 ms a call on a CPU, a tenth of a
        small model's step; this is one host read, where Lightning would make it."""
        trainer = self._trainer
        if trainer is None:
            return
        every = getattr(trainer, "log_every_n_steps", 1)
        before = self._epoch.step_before_batch
        # cheap tests first: the global step is read only where a log is due
        logs = bool(every) and ((before + 1) % every == 0 or trainer.should_stop)
        logs = logs or getattr(trainer, "fast_dev_run", False)
        if not (logs or not every) or (step := self._global_step(trainer)) == before:
            return
        self.check_finite_loss()  # every step when nothing is logged (log_every_n_steps=0)
        loggers = trainer.loggers
        if not logs or not loggers:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        values = {"train/loss_step": float(loss), "epoch": self._epoch.number}
        for logger in loggers:
            logger.log_metrics(values, step=step - 1)
        # written out (a CSV file appended, a TensorBoard file flushed) every few seconds,
        # not at every logging step; Lightning writes them again at each epoch end
        now = time.monotonic()
        if now - self._logs_saved_at >= SAVE_LOGS_SECONDS:
            self._logs_saved_at = now
            for logger in loggers:
                logger.save()

    def _eval_step(self, batch: Batch, split: str) -> None:
        outputs = self._outputs(batch)
        loss = self.task.loss(outputs, batch).detach()
        getattr(self, f"{split}_metrics").update(*self.task.metric_inputs(outputs, batch))
        # the split's loss is the batch-size-weighted mean over every batch of every rank
        if self._eval_loss is None or self._eval_loss.device != loss.device:
            self._eval_loss = _loss_total(loss.device)
        self._eval_loss[0] += loss.to(self._eval_loss.dtype) * batch[INPUTS].shape[0]
        self._eval_loss[1] += batch[INPUTS].shape[0]

    def _log_metrics(self, split: str) -> None:
        """Log a split's metrics once per epoch, over the whole split: torchmetrics syncs
        the task's metrics across processes, and the loss sum and count are summed
        across them here. The values are then the same on every rank; ``sync_dist`` (a
        mean of equal values) says so to Lightning."""
        metrics = getattr(self, f"{split}_metrics")
        values = dict(metrics.compute())
        metrics.reset()
        if split != "train":  # every rank reduces, one that read no batch too
            local = self._eval_loss if self._eval_loss is not None else _loss_total(self.device)
            total = self.trainer.strategy.reduce(local, reduce_op="sum")
            self._eval_loss = None
            if total[1] > 0:
                self.log(
                    f"{split}/loss", (total[0] / total[1]).float(), prog_bar=True, sync_dist=True
                )
        self.log_dict(values, sync_dist=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self.finish_train_epoch()

    def finish_train_epoch(self) -> None:
        """Check the epoch's last losses, then log its mean ``train/loss`` and train
        metrics, once: the sums start again. ``MetricHistory`` calls it before anything
        saves the epoch's end, so that the checkpoint holds the epoch's train point;
        Lightning's hook then finds nothing left to do."""
        self.check_finite_loss()
        epoch = self._epoch
        if epoch.loss_count:
            mean = epoch.loss_sum / epoch.loss_count
            self.log("train/loss", mean, sync_dist=True)  # as a tensor on the module's device
            self.progress_metrics["train/loss"] = torch.tensor(mean)
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
        self.check_finite_loss()  # raising here keeps the checkpoint from being written
        if self._carries_train_epoch() and (self._epoch.loss_count or self._epoch.metrics_updated):
            checkpoint[TRAIN_EPOCH_KEY] = self._train_epoch_state()  # saved mid-epoch
        if self.run_config is not None:
            checkpoint["hlt_config"] = self.run_config
        if self.data_facts:
            checkpoint[DATA_FACTS_KEY] = self.data_facts

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        facts = checkpoint_data_facts(checkpoint)
        if facts is not None:
            self.data_facts = facts
        if TRAIN_EPOCH_KEY in checkpoint and self._carries_train_epoch():
            self._resume_train_epoch(checkpoint[TRAIN_EPOCH_KEY])

    def _carries_train_epoch(self) -> bool:
        """Whether checkpoints carry the running epoch's sums: in one process only. Each
        of several processes sums its own batches and only the first writes the file; a
        run resumed on several processes logs that epoch over the steps after the resume."""
        trainer = self._trainer
        return trainer is None or trainer.world_size == 1

    def _train_epoch_state(self) -> dict[str, Any]:
        """The running epoch's train loss sum and metric states, for a checkpoint saved
        mid-epoch: the resumed run's ``train/loss`` and train metrics for that epoch are
        then those of all its batches, as if it had not stopped."""
        epoch = self._epoch
        state: dict[str, Any] = {
            "epoch": epoch.number,
            "loss_sum": epoch.loss_sum,
            "loss_count": epoch.loss_count,
        }
        if epoch.metrics_updated and isinstance(self.train_metrics, ResumableMetrics):
            state["metrics"] = self.train_metrics.epoch_state()
        return state

    def _resume_train_epoch(self, saved: Any) -> None:
        """Go on with the sums ``_train_epoch_state`` saved; a state that is not of this
        module's metrics is a ``UserError`` naming the checkpoint key."""
        try:
            epoch = EpochState(
                number=int(saved["epoch"]),
                loss_sum=float(saved["loss_sum"]),
                loss_count=int(saved["loss_count"]),
            )
            metrics = saved.get("metrics")
            if metrics is not None and isinstance(self.train_metrics, ResumableMetrics):
                self.train_metrics.load_epoch_state(metrics)
                epoch.metrics_updated = True
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise UserError(f"checkpoint key {TRAIN_EPOCH_KEY}: {error}") from None
        self._epoch = epoch
