"""The callbacks every run gets reach Lightning as one (``RunCallbacks``): each hook calls
only the parts that define it, and each part's checkpoint state round-trips under its own
name, from the new layout and from hlt-core 0.3's (one top-level entry per part)."""

from __future__ import annotations

import torch

from hlt_core.training.callbacks import BestSoFar, FiniteLoss, RunCallbacks


def _with_best(tmp_path, value: float) -> RunCallbacks:
    callbacks = RunCallbacks(tmp_path)
    callbacks.best.monitor, callbacks.best.value, callbacks.best.step = "val/loss", value, 7
    return callbacks


def test_each_hook_reaches_only_the_parts_that_define_it(tmp_path):
    callbacks = RunCallbacks(tmp_path)
    before_backward = callbacks._hooks["on_before_backward"]
    assert [type(hook.__self__) for hook in before_backward] == [FiniteLoss]
    assert callbacks._hooks["on_before_zero_grad"] == []
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
