"""Exact resume: a run resumed from ``last.ckpt`` at step k ends with weights
bit-identical (CPU) to the uninterrupted run with the same seed and config, whether
``last.ckpt`` was saved mid-epoch, at an epoch's end, at ``max_steps`` or on a signal."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import lightning as L
import pytest
import torch

from helpers import compose_run
from hlt_core.run import Interrupted, run

# 3 train batches per epoch (the data's own size, not limit_train_batches, which would
# hide epoch arithmetic), 2 epochs: 6 optimizer steps. Dropout on, so the resumed run
# must also restore the random state; a cosine schedule stepped per epoch, so it must
# step the learning rate exactly as often.
BASE = [
    "trainer.max_epochs=2",
    "data.train_batches=3",
    "data.val_batches=1",
    "data.test_batches=1",
    "scheduler=cosine",
    "scheduler.scheduler.T_max=2",
    "trainer.enable_progress_bar=false",
    "trainer.deterministic=true",
    "model.dropout=0.2",
    "print_config=false",
    "test=false",
]


class SignalAt(L.Callback):
    """Sends ``signum`` to this process inside training step ``step`` (before backward)."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_before_backward(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


class KeepLastAtEpochStart(L.Callback):
    """Copies ``last.ckpt`` as each epoch after the first begins: what a kill then finds."""

    def __init__(self, folder: str) -> None:
        self.last = Path(folder) / "last.ckpt"

    def on_train_epoch_start(self, trainer: L.Trainer, *args) -> None:
        if trainer.current_epoch > 0:
            copy = self.last.with_name(f"found-at-epoch{trainer.current_epoch}.ckpt")
            copy.write_bytes(self.last.read_bytes())


def train(tmp: Path, name: str, *extra: str) -> dict[str, torch.Tensor]:
    run_dir = tmp / name
    run(compose_run([*BASE, *extra], run_dir))
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return checkpoint


def assert_identical(resumed: dict, straight: dict) -> None:
    assert resumed["global_step"] == straight["global_step"] == 6
    a, b = resumed["state_dict"], straight["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs by {(a[key] - b[key]).abs().max()}"
    assert resumed["lr_schedulers"] == straight["lr_schedulers"]
    # the optimizer moments too: the next step would diverge otherwise
    for sa, sb in zip(
        resumed["optimizer_states"][0]["state"].values(),
        straight["optimizer_states"][0]["state"].values(),
        strict=True,
    ):
        for key in sa:
            assert torch.equal(torch.as_tensor(sa[key]), torch.as_tensor(sb[key]))


def resumed_from(tmp: Path, stop_at: int) -> dict:
    first = tmp / "first"
    run(compose_run([*BASE, f"trainer.max_steps={stop_at}"], first))
    saved = torch.load(first / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == stop_at  # max_steps still writes last.ckpt
    return train(tmp, "resumed", f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}")


def test_resume_from_an_epoch_boundary_is_bit_identical(tmp_path):
    straight = train(tmp_path, "straight")
    assert_identical(resumed_from(tmp_path, stop_at=3), straight)
    # the learning curve too: the epoch that ended at the checkpoint keeps its train point
    assert_same_curve(tmp_path / "resumed", tmp_path / "straight")


def test_a_run_resumed_from_the_end_of_an_epoch_validated_within_draws_the_same_curve(tmp_path):
    """Validation inside each epoch (``val_check_interval=0.5``: after every batch), so
    ModelCheckpoint saves last.ckpt before the epoch's train means exist; the copy of
    last.ckpt that a kill finds as epoch 1 begins still holds epoch 0's train point."""
    folder = tmp_path / "straight" / "checkpoints"
    within = ["trainer.val_check_interval=0.5",
              f"+callbacks.found._target_={__name__}.KeepLastAtEpochStart",
              f"+callbacks.found.folder={folder}"]  # fmt: skip
    train(tmp_path, "straight", *within)
    found = folder / "found-at-epoch1.ckpt"
    assert [r["epoch"] for r in history(found) if "train/loss" in r] == [0]
    train(tmp_path, "resumed", *within[:1], f"ckpt_path={found}")
    assert_same_curve(tmp_path / "resumed", tmp_path / "straight")


def history(checkpoint: Path) -> list[dict]:
    """The learning curve's points (``MetricHistory``'s rows) that ``checkpoint`` holds."""
    saved = torch.load(checkpoint, weights_only=True)
    (states,) = [v for k, v in saved["callbacks"].items() if "RunCallbacks" in k]
    return next((v["rows"] for k, v in states.items() if "MetricHistory" in k), [])


def assert_same_curve(resumed: Path, straight: Path) -> None:
    """Every point of the learning curve, train means included, and its drawing."""
    rows = history(straight / "checkpoints" / "last.ckpt")
    assert history(resumed / "checkpoints" / "last.ckpt") == rows
    assert [r["epoch"] for r in rows if "train/loss" in r] == [0, 1]
    drawn = (straight / "learning_curve.png").read_bytes()
    assert (resumed / "learning_curve.png").read_bytes() == drawn


def test_resume_from_mid_epoch_is_bit_identical(tmp_path):
    # Needs a data loader that resumes mid-epoch (stateful sampler, issue 3).
    straight = train(tmp_path, "straight")
    assert_identical(resumed_from(tmp_path, stop_at=4), straight)


def test_resume_of_an_end_of_epoch_checkpoint_with_max_steps_is_bit_identical(tmp_path):
    # max_steps=3 ends at the first epoch's end: last.ckpt is the epoch-end checkpoint.
    straight = train(tmp_path, "straight")
    first = tmp_path / "first"
    run(compose_run([*BASE, "trainer.max_steps=3"], first))
    last = first / "checkpoints" / "last.ckpt"
    resumed = train(tmp_path, "resumed", "trainer.max_steps=6", f"ckpt_path={last}")
    assert_identical(resumed, straight)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(("step", "saved_at"), [(1, 2), (2, 3)], ids=["mid_epoch", "last_step"])
def test_a_signal_inside_a_step_resumes_bit_identical(tmp_path, signum, step, saved_at):
    straight = train(tmp_path, "straight")
    first = tmp_path / "first"
    kill = [f"+callbacks.kill._target_={__name__}.SignalAt", f"+callbacks.kill.step={step}"]
    with pytest.raises(Interrupted, match=f"{signum.name} at step {saved_at}") as stop:
        run(compose_run([*BASE, *kill, f"+callbacks.kill.signum={int(signum)}"], first))
    assert stop.value.exit_code == 128 + signum
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl+C as before
    last = first / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == saved_at  # the step finished
    resumed = train(tmp_path, "resumed", "trainer.max_steps=6", f"ckpt_path={last}")
    assert_identical(resumed, straight)


def test_a_second_ctrl_c_stops_at_once_saving_nothing(tmp_path):
    run_dir = tmp_path / "run"
    kill = [f"+callbacks.{name}._target_={__name__}.SignalAt" for name in ("one", "two")]
    steps = [f"+callbacks.{name}.{key}={value}" for name in ("one", "two")
             for key, value in (("step", 1), ("signum", int(signal.SIGINT)))]  # fmt: skip
    with pytest.raises(SystemExit):
        run(compose_run([*BASE, *kill, *steps], run_dir))
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()


@pytest.mark.parametrize(
    "keeps", ["callbacks.model_checkpoint.save_top_k=0", "callbacks.model_checkpoint.mode=max"]
)
def test_last_ckpt_holds_every_epoch_end_and_resumes_from_it_bit_identical(tmp_path, keeps):
    # save_top_k=0 / mode=max: the monitored val/loss is never kept as an improvement,
    # so ModelCheckpoint writes last.ckpt at no (or only the first) epoch end
    folder = tmp_path / "straight" / "checkpoints"
    found = [f"+callbacks.found._target_={__name__}.KeepLastAtEpochStart",
             f"+callbacks.found.folder={folder}"]  # fmt: skip
    straight = train(tmp_path, "straight", keeps, *found, "trainer.max_epochs=3",
                     "scheduler.scheduler.T_max=3")  # fmt: skip
    for epoch in (1, 2):
        saved = torch.load(folder / f"found-at-epoch{epoch}.ckpt", weights_only=True)
        assert saved["global_step"] == 3 * epoch  # the last step of the epoch before
    last = folder / "found-at-epoch1.ckpt"
    resumed = train(tmp_path, "resumed", keeps, "trainer.max_epochs=3",
                    "scheduler.scheduler.T_max=3", f"ckpt_path={last}")  # fmt: skip
    assert resumed["global_step"] == straight["global_step"] == 9
    for key, value in straight["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key


def logged(run_dir: Path) -> list[dict[str, str]]:
    """metrics.csv's rows by what a resume must not change: all but the throughput. An
    epoch's train/loss and train metrics are over all its batches, those before the stop
    included."""
    with (run_dir / "csv" / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    kept = [{k: v for k, v in row.items() if k in ("epoch", "step") or k[:4] in ("trai", "val/")}
            for row in rows]  # fmt: skip
    return [row for row in kept if any(v for k, v in row.items() if k not in ("epoch", "step"))]


def test_a_run_resumed_in_its_folder_keeps_the_metrics_it_logged_before(tmp_path, recwarn):
    straight = tmp_path / "straight"
    run(compose_run([*BASE, "trainer.log_every_n_steps=1"], straight))
    folder = tmp_path / "stopped"
    run(compose_run([*BASE, "trainer.log_every_n_steps=1", "trainer.max_steps=4"], folder))
    last = folder / "checkpoints" / "last.ckpt"
    recwarn.clear()
    run(compose_run([*BASE, "trainer.log_every_n_steps=1", f"ckpt_path={last}"], folder))
    # its own checkpoints and metrics are no surprise: neither is warned about
    assert not [str(w.message) for w in recwarn if "not empty" in str(w.message)]
    # every step, each epoch's validation, best val/loss and train means, the final one
    assert len(logged(straight)) == 2 * 3 + 2 * 3 + 1
    rows = logged(folder)
    # the stopped run's end: the train means of epoch 1 so far, its one step (step 3)
    stop = rows.pop(7)
    assert (stop["epoch"], stop["step"]) == ("1", "3")
    assert stop["train/loss"] == rows[6]["train/loss_step"]
    # the resumed run's epoch 1: the means over all its steps, the one before the stop too
    assert rows == logged(straight)
    # the learning curve's rows too, kept in the checkpoint: the same points
    assert curve(folder) == curve(straight)
    assert [row[:2] for row in curve(straight)] == [(0, 2), (0, 2), (1, 5), (1, 5)]


def curve(run_dir: Path) -> list[tuple]:
    """The learning curve's points that last.ckpt holds: (epoch, step, the rest)."""
    rows = history(run_dir / "checkpoints" / "last.ckpt")
    return [(r.pop("epoch"), r.pop("step"), r) for r in rows]
