"""Callbacks every run gets: exact resume, checkpoints on SIGTERM/SIGINT and at
``max_steps``, the metric history, the best value so far, the throughput. They are added
by ``run`` itself because a run without them would be silently non-reproducible or lose
work. (The stop on a non-finite loss is ``TaskModule``'s: the loss is its own.)"""

from __future__ import annotations

import math
import random
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import Any, cast

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from hlt_core.training.module import TaskModule
from hlt_core.training.throughput import Throughput


def last_checkpoint(checkpoint_dir: str | Path) -> Path:
    """``last.ckpt`` in ``checkpoint_dir``, named as ModelCheckpoint's ``save_last`` names it:
    hlt's own saves write the same file, so a resume has one latest state to read."""
    name = ModelCheckpoint.CHECKPOINT_NAME_LAST + ModelCheckpoint.FILE_EXTENSION
    return Path(checkpoint_dir) / name


def _numpy_state() -> tuple[Any, ...]:
    """NumPy's state with its key as a tensor: checkpoints load with weights_only=True."""
    state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
    kind, key, pos, has_gauss, cached = state
    return (kind, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(cached))


class RngState(Callback):
    """Stores the Python, NumPy and torch random states in each checkpoint.

    Lightning does not, so without this a resumed run draws different dropout masks
    (or anything else random) than the uninterrupted run would have.
    """

    def state_dict(self) -> dict[str, Any]:
        return {
            "python": random.getstate(),
            "numpy": _numpy_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        random.setstate(state_dict["python"])
        kind, key, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class LastCheckpoint(Callback):
    """Saves ``last.ckpt`` where Lightning's ModelCheckpoint does not.

    Right after the step that reaches ``trainer.max_steps``: saved there, inside the
    batch, the loop state says "mid-epoch, k steps done", so a resume continues the
    epoch; a save after ``fit`` returns would mark the epoch as finished and the resumed
    run would skip the rest of it.

    At every epoch end, after the epoch's validation and its train means (``RunCallbacks``
    runs ``MetricHistory`` first): ``ModelCheckpoint(save_last=True)`` writes it only
    together with a top-k checkpoint, that is when the monitored metric improved
    (Lightning 2.6), so a kill after epochs without improvement would lose them all; and
    with validation inside the epoch (``val_check_interval`` below 1) it writes it after
    that validation, before the epoch's train means exist.
    """

    def __init__(self, checkpoint_dir: str | Path) -> None:
        self.path = last_checkpoint(checkpoint_dir)
        self.saved = False  # at max_steps: that state is the run's latest
        self._max_steps = -1  # the trainer's, read once

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._max_steps = trainer.max_steps

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if 0 < self._max_steps <= trainer.global_step and not self.saved:
            trainer.save_checkpoint(self.path)
            self.saved = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.saved:
            trainer.save_checkpoint(self.path)


class InterruptCheckpoint(Callback):
    """Saves ``last.ckpt`` when SIGTERM or SIGINT (Ctrl+C) stops training, and only then.

    Lightning turns SIGTERM into ``SIGTERMException`` once the running step is done, so
    the saved state resumes exactly. SIGINT would raise ``KeyboardInterrupt`` anywhere,
    e.g. after the loader handed out a batch but before the optimizer stepped on it, and
    the resumed run would skip that batch; so during training Ctrl+C is routed to the
    SIGTERM handler (a second Ctrl+C stops at once, saving nothing). Other exceptions (a
    NaN loss, a bug) must not overwrite the last good checkpoint.

    Not an ``OnExceptionCheckpoint``: with one of those among the callbacks, Lightning
    turns ``fit(ckpt_path=None)`` into ``ckpt_path="last"`` and silently resumes from a
    checkpoint left in the run folder. Resuming is asked for with ``ckpt_path=`` only.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.ckpt_path = str(last_checkpoint(dirpath))
        self.saved_on: str | None = None
        self._sigint = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._sigint:
            raise KeyboardInterrupt
        self._sigint = True
        on_sigterm = signal.getsignal(signal.SIGTERM)
        if not callable(on_sigterm):
            raise KeyboardInterrupt
        on_sigterm(signal.SIGTERM, frame)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after Lightning's own handlers are set; its teardown puts the previous ones back
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._on_sigint)

    def on_exception(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        exception = args[-1] if args else kwargs.get("exception")
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        trainer.save_checkpoint(self.ckpt_path)
        self.saved_on = "SIGINT" if self._sigint else "SIGTERM"


def finish_epoch_end(fit_loop: dict[str, Any]) -> None:
    """Rewrite a fit-loop state saved at the end of an epoch (after its last batch and
    validation, e.g. by ``ModelCheckpoint`` in ``on_train_epoch_end``) as "epoch done,
    next one not begun". Mid-epoch states are left as they are."""
    epochs = fit_loop["epoch_progress"]
    batches = fit_loop["epoch_loop.batch_progress"]
    done = epochs["current"]
    if not (batches["is_last_batch"] and done["ready"] == done["started"] == done["processed"]):
        return
    for counts in (epochs["current"], epochs["total"]):
        counts["completed"] = counts["processed"]
    batches["current"] = dict.fromkeys(batches["current"], 0)
    batches["is_last_batch"] = False


class EpochEndResume(Callback):
    """Resumes an end-of-epoch checkpoint exactly when ``trainer.max_steps`` is set.

    With ``max_steps`` Lightning restores such a checkpoint as "restarting inside the end
    of epoch k" and counts epoch k twice: the resumed run reads epoch k+2's data where
    k+1's belongs and stops an epoch early under ``max_epochs``. Rewritten as "epoch k
    done" (``finish_epoch_end``) it resumes as it does without ``max_steps``.
    """

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if "fit_loop" in checkpoint.get("loops", {}):
            finish_epoch_end(checkpoint["loops"]["fit_loop"])


class MetricHistory(Callback):
    """Every epoch's logged ``train/*`` and ``val/*`` metrics at the step and epoch the
    loggers record them, kept by the run itself so that its learning curves do not depend
    on which logger (if any) was chosen. Read where the metrics are computed anyway: no
    host sync is added to the step.

    Loggers record both at the index of the last step taken (``global_step - 1``: the
    epoch's last batch is step 99 of a 100-batch epoch). Validation metrics are ready at
    ``on_validation_end``; an epoch's train means are logged by the module, which is
    asked to do so here (``TaskModule.finish_train_epoch``) rather than in its own hook,
    which Lightning calls after the callbacks' and after ``LastCheckpoint`` saved.

    The rows are kept in checkpoints, so that a resumed run's curves start where the run
    did: a checkpoint saved at an epoch's end holds the epoch's validation and train
    points, and a run resumed from it draws the uninterrupted run's curve.
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(row) for row in self.rows]} if self.rows else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # evaluating the best checkpoint after fit restores it too: this run's rows stay
        if not self.rows:
            self.rows = [dict(row) for row in state_dict.get("rows", [])]

    def _record(self, trainer: L.Trainer, split: str, epoch: int, step: int) -> None:
        metrics = {
            key: float(value)
            for key, value in trainer.callback_metrics.items()
            if key.startswith(f"{split}/")
            and not key.endswith("_step")
            and (not isinstance(value, torch.Tensor) or value.numel() == 1)
        }
        if metrics:
            self.rows.append({"epoch": epoch, "step": step, **metrics})

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._record(trainer, "val", trainer.current_epoch, trainer.global_step - 1)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if isinstance(pl_module, TaskModule):  # another module logs its means after this
            pl_module.finish_train_epoch()
            self._record(trainer, "train", trainer.current_epoch, trainer.global_step - 1)


class BestSoFar(Callback):
    """The best value yet of the metric the checkpoint callback monitors (its monitor and
    mode: ``callbacks.model_checkpoint``), and the step it was reached at: logged as
    ``<monitor>_best`` and ``<monitor>_best_step`` after every validation in training,
    kept in checkpoints so that a resumed run goes on from it, and written to results.json.
    A sweep that optimises it ranks runs by their best epoch, not their last. The value is
    the ModelCheckpoint's ``best_model_score`` as of this validation; kept here too because
    that one is empty with ``save_top_k=0`` and has no step. A run that never validated in
    training (shorter than an epoch) takes the value of its evaluated checkpoint."""

    def __init__(self) -> None:
        self.monitor: str | None = None
        self.value: float | None = None
        self.step: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        checkpointing = trainer.checkpoint_callback
        if not isinstance(checkpointing, ModelCheckpoint) or not checkpointing.monitor:
            return
        current = trainer.callback_metrics.get(checkpointing.monitor)
        if trainer.sanity_checking or current is None or not math.isfinite(value := float(current)):
            return
        if trainer.state.fn != "fit":
            if self.value is None:  # no validation in fit (a run shorter than an epoch):
                # the evaluated checkpoint's value is the best there is
                self.monitor, self.value, self.step = (
                    checkpointing.monitor,
                    value,
                    trainer.global_step,
                )
                trainer.callback_metrics.update(
                    {k: torch.tensor(v) for k, v in self.summary.items()}
                )
            return
        if self.value is None or (
            value < self.value if checkpointing.mode == "min" else value > self.value
        ):
            self.value, self.step = value, trainer.global_step
        self.monitor = checkpointing.monitor
        for logger in trainer.loggers:
            logger.log_metrics(self.summary, step=trainer.global_step)

    @property
    def summary(self) -> dict[str, float]:
        if self.monitor is None or self.value is None or self.step is None:
            return {}
        return {f"{self.monitor}_best": self.value, f"{self.monitor}_best_step": self.step}

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "value": self.value, "step": self.step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.monitor, self.value, self.step = (
            state_dict["monitor"],
            state_dict["value"],
            state_dict["step"],
        )


def _overrides(callback: Callback, hook: str) -> bool:
    return getattr(type(callback), hook) is not getattr(Callback, hook)


# the hooks Lightning calls at every batch; its dispatch passes over a hook that is not
# callable, where it would call a no-op through its profiler (about 2 µs a callback a hook
# on a 2-core CPU, six hooks a training step)
BATCH_HOOKS = (
    *(f"on_{stage}_batch_{when}" for stage in ("train", "validation", "test", "predict")
      for when in ("start", "end")),
    "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad",
)  # fmt: skip


def skip_hooks(callback: Callback, hooks: Iterable[str]) -> None:
    """Set ``hooks`` to None on ``callback`` (the instance): Lightning passes over them."""
    for hook in hooks:
        setattr(callback, hook, None)


def skip_unused_batch_hooks(callback: Callback) -> Callback:
    """``callback`` with the batch hooks it leaves as Lightning's no-ops skipped; returns it."""
    skip_hooks(callback, [hook for hook in BATCH_HOOKS if not _overrides(callback, hook)])
    return callback


# every hook Lightning calls on a callback with (trainer, pl_module, ...)
HOOKS = [
    name
    for name, value in vars(Callback).items()
    if callable(value) and (name.startswith("on_") or name in ("setup", "teardown"))
]


class RunCallbacks(Callback):
    """The callbacks ``run`` adds to every run (exact resume, the checkpoints on signal, at
    epoch ends and at max_steps, the metric history, the best so far, the throughput),
    reaching Lightning as one callback and kept by name where ``run`` reads them.

    Why one: Lightning calls every hook of every callback on every step, through its
    profiler, whether the callback defines it or not (about 1.5 µs a callback a hook on
    a 2-core CPU, six hooks a step). Joined, seven cost as one, each hook reaches only
    the parts that define it, and a batch hook no part defines is not called at all.
    ``relay_batch_hooks`` has the batch hooks of the callbacks before it called from
    here too. Their checkpoint state is kept under this callback's key, one entry per
    part's ``state_key``.
    """

    def __init__(self, checkpoint_dir: str | Path) -> None:
        self.interrupt = InterruptCheckpoint(checkpoint_dir)
        self.last = LastCheckpoint(checkpoint_dir)
        self.history = MetricHistory()
        self.best = BestSoFar()
        self.throughput = Throughput()
        self.parts: list[Callback] = [
            RngState(),
            EpochEndResume(),
            self.interrupt,
            self.history,  # the epoch's train means, before last.ckpt saves them
            self.last,
            self.best,
            self.throughput,
        ]
        self._hooks = {
            hook: [getattr(part, hook) for part in self.parts if _overrides(part, hook)]
            for hook in HOOKS
        }
        skip_hooks(self, [hook for hook in BATCH_HOOKS if not self._hooks[hook]])

    def relay_batch_hooks(self, trainer: L.Trainer) -> None:
        """Call the batch hooks of the callbacks Lightning calls before this one (those
        configured, in its order) from this callback's own, before the parts', and have
        Lightning pass over theirs: one dispatch a hook for them all (about 3 µs a step
        each on a 2-core CPU). Every hook is called in the same order as before; Lightning's
        profiler times them under this callback."""
        order: list[Callback] = getattr(trainer, "callbacks", [])
        before = order[: order.index(self)]
        for hook in BATCH_HOOKS:
            theirs = [getattr(c, hook) for c in before if callable(getattr(c, hook))]
            if theirs:
                self._hooks[hook] = [*theirs, *self._hooks[hook]]
                vars(self).pop(hook, None)  # a hook skipped for want of parts is called again
                for callback in before:
                    skip_hooks(callback, [hook])

    def state_dict(self) -> dict[str, Any]:
        states = {part.state_key: part.state_dict() for part in self.parts}
        return {key: state for key, state in states.items() if state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for part in self.parts:
            if part.state_key in state_dict:
                part.load_state_dict(state_dict[part.state_key])

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        states = checkpoint.get("callbacks")
        if isinstance(states, dict) and self.state_key not in states:
            # hlt-core 0.3 saved each part under its own key
            keys = [part.state_key for part in self.parts if part.state_key in states]
            states[self.state_key] = {key: states.pop(key) for key in keys}
        for hook in self._hooks["on_load_checkpoint"]:
            hook(trainer, pl_module, checkpoint)


def _forward(hook: str) -> Any:
    def forward(self: RunCallbacks, *args: Any, **kwargs: Any) -> None:
        for part_hook in self._hooks[hook]:
            part_hook(*args, **kwargs)

    forward.__name__ = hook
    return forward


for _hook in HOOKS:
    if _hook != "on_load_checkpoint":
        setattr(RunCallbacks, _hook, _forward(_hook))


def run_callbacks(checkpoint_dir: str | Path) -> RunCallbacks:
    """The callbacks every run gets, as one (``RunCallbacks``)."""
    return RunCallbacks(checkpoint_dir)
