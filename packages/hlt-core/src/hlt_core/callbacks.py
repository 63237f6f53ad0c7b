"""Callbacks every run gets: exact resume, a stop on non-finite loss, a checkpoint on
SIGTERM/SIGINT. They are added by ``run`` itself because a run without them would be
silently non-reproducible or lose work."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from hlt_core.errors import UserError


class NonFiniteLossError(UserError):
    """The training loss became NaN or Inf; the message names the step."""


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


class FiniteLoss(Callback):
    """Stops the run when the training loss becomes NaN or Inf, naming the first such step,
    and never lets a checkpoint be written after it: the last good one stays.

    Reading the loss on the host every step would stall a GPU, so each step only keeps a
    reference to its (detached) loss; they are checked together, with one host read,
    where the host waits anyway: on logging steps, at the end of an epoch and before any
    checkpoint is saved.
    """

    def __init__(self, checkpoint_dir: str | Path) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        # (loss, step, epoch, batch) of the steps since the last check
        self._recent: list[tuple[torch.Tensor, int, int, int]] = []

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        where = (trainer.global_step, trainer.current_epoch, trainer.fit_loop.batch_idx)
        self._recent.append((loss.detach(), *where))

    def check(self) -> None:
        """Raise if a loss since the last check was not finite."""
        if not self._recent:
            return
        finite = torch.isfinite(torch.stack([loss.float() for loss, *_ in self._recent]))
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0])
            loss, step, epoch, batch = self._recent[first]
            last = self.checkpoint_dir / "last.ckpt"
            kept = f"last good checkpoint: {last}" if last.is_file() else "no checkpoint saved yet"
            raise NonFiniteLossError(
                f"training loss is {float(loss)} at step {step} (epoch {epoch}, batch {batch}); "
                f"run stopped, {kept}"
            )
        self._recent.clear()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.global_step % (getattr(trainer, "log_every_n_steps", 1) or 1) == 0:
            self.check()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check()

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.check()  # raising here keeps the checkpoint from being written


class MaxStepsCheckpoint(Callback):
    """Saves ``last.ckpt`` right after the step that reaches ``trainer.max_steps``.

    Saved there, inside the batch, the loop state says "mid-epoch, k steps done", so a
    resume continues the epoch; a save after ``fit`` returns would mark the epoch as
    finished and the resumed run would skip the rest of it.
    """

    def __init__(self, checkpoint_dir: str | Path) -> None:
        self.path = Path(checkpoint_dir) / "last.ckpt"
        self.saved = False

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        if 0 < trainer.max_steps <= trainer.global_step and not self.saved:
            trainer.save_checkpoint(self.path)
            self.saved = True


class InterruptCheckpoint(Callback):
    """Saves ``last.ckpt`` when SIGTERM or SIGINT (Ctrl+C) stops training, and only then.

    Lightning turns SIGTERM into ``SIGTERMException`` and SIGINT into
    ``KeyboardInterrupt`` at a batch boundary, so the saved state resumes cleanly.
    Other exceptions (a NaN loss, a bug) must not overwrite the last good checkpoint.

    Not an ``OnExceptionCheckpoint``: with one of those among the callbacks, Lightning
    turns ``fit(ckpt_path=None)`` into ``ckpt_path="last"`` and silently resumes from a
    checkpoint left in the run folder. Resuming is asked for with ``ckpt_path=`` only.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.ckpt_path = str(Path(dirpath) / "last.ckpt")
        self.saved_on: str | None = None

    def on_exception(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        exception = args[-1] if args else kwargs.get("exception")
        if not isinstance(exception, SIGTERMException | KeyboardInterrupt):
            return
        if trainer.state.fn != "fit":
            return
        trainer.save_checkpoint(self.ckpt_path)
        self.saved_on = "SIGTERM" if isinstance(exception, SIGTERMException) else "SIGINT"


@dataclass
class RunCallbacks:
    """The callbacks ``run`` adds to every run, kept by name where ``run`` reads them."""

    interrupt: InterruptCheckpoint
    at_max_steps: MaxStepsCheckpoint
    others: list[Callback]

    def as_list(self) -> list[Callback]:
        return [*self.others, self.interrupt, self.at_max_steps]


def run_callbacks(checkpoint_dir: str | Path) -> RunCallbacks:
    """Exact resume, the non-finite loss stop and the checkpoints on signal or max_steps."""
    return RunCallbacks(
        interrupt=InterruptCheckpoint(checkpoint_dir),
        at_max_steps=MaxStepsCheckpoint(checkpoint_dir),
        others=[RngState(), FiniteLoss(checkpoint_dir)],
    )
