"""The callbacks every run gets reach Lightning as one (``RunCallbacks``): each hook calls
only the parts that define it, and each part's checkpoint state round-trips under its own
name, from the new layout and from hlt-core 0.3's (one top-level entry per part)."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import lightning as L
import torch
from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.profilers import PassThroughProfiler

from hlt_core.contracts import INPUTS
from hlt_core.testing import StandInData, StandInModel, StandInTask
from hlt_core.training import throughput
from hlt_core.training.callbacks import (
    BestSoFar,
    LastCheckpoint,
    RunCallbacks,
    skip_unused_batch_hooks,
)
from hlt_core.training.module import TaskModule
from hlt_core.training.performance import ModelCheckpoint
from hlt_core.training.progress import ProgressLines
from hlt_core.training.throughput import Throughput


def _with_best(tmp_path, value: float) -> RunCallbacks:
    callbacks = RunCallbacks(tmp_path)
    callbacks.best.monitor, callbacks.best.value, callbacks.best.step = "val/loss", value, 7
    return callbacks


def test_each_hook_reaches_only_the_parts_that_define_it(tmp_path):
    callbacks = RunCallbacks(tmp_path)
    batch_end = callbacks._hooks["on_train_batch_end"]
    assert [type(hook.__self__) for hook in batch_end] == [LastCheckpoint, Throughput]
    assert callbacks._hooks["on_before_backward"] == []
    assert callbacks.on_before_backward is None  # so Lightning passes over it
    assert [type(h.__self__) for h in callbacks._hooks["on_validation_end"]][-1] is BestSoFar


def test_part_states_round_trip_in_the_new_layout_and_the_old_one(tmp_path):
    saved = _with_best(tmp_path, 0.25).state_dict()
    assert set(saved) == {"RngState", "BestSoFar"} and saved["BestSoFar"]["value"] == 0.25
    for layout in ({"RunCallbacks": saved}, dict(saved)):  # 0.3 kept each part on top
        checkpoint = {"callbacks": layout}
        restored = RunCallbacks(tmp_path)
        torch.manual_seed(123)  # the restored RNG state must replace this one
        restored.on_load_checkpoint(None, None, checkpoint)  # trainer and module unused
        restored.load_state_dict(checkpoint["callbacks"]["RunCallbacks"])
        assert restored.best.summary == {"val/loss_best": 0.25, "val/loss_best_step": 7}
        assert torch.equal(torch.get_rng_state(), saved["RngState"]["torch"])


class Calls(PassThroughProfiler):
    """Records the name of every action Lightning profiles: each callback hook it calls."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: set[str] = set()

    def start(self, action_name: str) -> None:
        self.actions.add(action_name)


def test_lightning_calls_only_the_batch_hooks_a_callback_uses(tmp_path):
    calls = Calls()
    progress, run_callbacks = ProgressLines(), RunCallbacks(tmp_path)
    callbacks = [
        progress,
        RichModelSummary(),
        ModelCheckpoint(dirpath=tmp_path, monitor="val/loss"),
        run_callbacks,
    ]
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        profiler=calls,
        callbacks=[skip_unused_batch_hooks(c) for c in callbacks],
        default_root_dir=tmp_path,
    )
    run_callbacks.relay_batch_hooks(trainer)
    module = TaskModule(StandInModel(3), StandInTask(), functools.partial(torch.optim.SGD, lr=0.1))
    trainer.fit(module, datamodule=StandInData())
    called = {a.removeprefix("[Callback]") for a in calls.actions if a.startswith("[Callback]")}
    batch_hooks = {c for c in called if "batch" in c or "backward" in c or "optimizer" in c}
    # LastCheckpoint, Throughput, and the progress lines' count of samples
    assert batch_hooks == {"RunCallbacks.on_train_batch_end"}
    assert progress._samples == 12  # 3 batches of 4: its hook was called from there
    assert "RichModelSummary.on_fit_start" in called  # other hooks are called as before
    assert (tmp_path / "last.ckpt").is_file()  # and the run's saves still happen
    assert callbacks[3].throughput.flops_per_sample  # counted at the first batch's end


def test_the_throughput_of_an_epoch_resumed_midway_counts_from_the_resume(monkeypatch):
    # Lightning does not start an epoch resumed midway again; the clock then read 0.0
    ticks = iter([1000.0, 1002.0])
    monkeypatch.setattr(throughput, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    logged: dict[str, float] = {}
    module = SimpleNamespace(log_dict=lambda values, **_: logged.update(values))
    trainer = SimpleNamespace(
        world_size=1, strategy=SimpleNamespace(root_device=torch.device("cpu"))
    )
    part = throughput.Throughput()
    part.flops_per_sample = 1.0  # not counted here
    part.on_train_start(trainer, module)
    for _ in range(2):
        part.on_train_batch_end(trainer, module, None, {INPUTS: torch.zeros(8, 3)}, 0)
    part.on_train_epoch_end(trainer, module)
    assert logged["perf/samples_per_sec"] == 16 / 2.0
