"""hlt-core's run on its own stand-ins (hlt_core.testing), no other hlt package: train,
test, predict and export; evaluate a checkpoint; resume; summarize a sweep."""

from __future__ import annotations

import csv
import json
from importlib.resources import files
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from hlt_core.errors import UserError
from hlt_core.jobs.sweeps import summarize
from hlt_core.run import run
from hlt_core.storing.checkpoints import check_resumable
from hlt_core.testing import StandInData, run_config


def trained(run_dir: Path, **overrides) -> dict[str, float]:
    return run(run_config(run_dir, **overrides))


def test_a_run_trains_tests_predicts_exports_and_records(tmp_path):
    metrics = trained(tmp_path, predict=True)
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["status"] == "ok" and record["test/acc"] == metrics["test/acc"]
    assert record["global_step"] == 6 and record["labels"] == "neg, pos"
    facts = json.loads((tmp_path / "export" / "data.json").read_text())
    assert facts == StandInData().data_facts
    spec = json.loads((tmp_path / "export" / "model.json").read_text())
    assert spec["target"] == "hlt_core.testing.StandInModel" and spec["out_features"] == 8
    assert spec["predictor"]["outputs"] == "probabilities"
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6 and last["hlt_data_facts"] == facts
    with (tmp_path / "predictions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["row"] for row in rows] == [f"r{i}" for i in range(12)]
    assert list(rows[0])[-2:] == ["neg", "pos"]


def test_a_checkpoint_evaluates_to_the_numbers_of_its_run(tmp_path):
    metrics = trained(tmp_path / "trained")
    best = json.loads((tmp_path / "trained" / "results.json").read_text())["best_checkpoint"]
    again = trained(tmp_path / "again", train=False, ckpt_path=best)
    assert again["test/acc"] == metrics["test/acc"]
    assert again["test/loss"] == pytest.approx(metrics["test/loss"], abs=1e-7)


def test_a_resume_ends_with_the_weights_of_the_uninterrupted_run(tmp_path):
    trained(tmp_path / "straight")
    trained(tmp_path / "first", **{"trainer.max_steps": 3})
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    trained(tmp_path / "resumed", ckpt_path=str(last))
    straight, resumed = (
        torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
        for name in ("straight", "resumed")
    )
    assert resumed["global_step"] == straight["global_step"] == 6
    for key, value in straight["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key


def test_a_resume_that_changes_the_optimizer_is_one_line(tmp_path):
    trained(tmp_path / "first", **{"trainer.max_steps": 3})
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match=r"^optimizer\.lr=0\.5 differs from the checkpoint's"):
        trained(tmp_path / "resumed", ckpt_path=str(last), **{"optimizer.lr": 0.5})


def test_a_sweep_stars_the_job_the_config_calls_best(tmp_path):
    for job, lr in (("0", 0.001), ("1", 0.5)):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        trained(tmp_path / job, **{"optimizer.lr": lr, "trainer.max_epochs": 1})
    rows = summarize(tmp_path, "val/loss", "min")
    losses = {row["job"]: row["val/loss"] for row in rows}
    starred = [row["job"] for row in rows if row["best"]]
    assert starred == [min(losses, key=losses.__getitem__)]
    assert (tmp_path / "summary.csv").read_text().count("\n") == 3


def test_a_checkpoint_of_0_4_resumes_with_the_scheduler_named_by_its_old_path(tmp_path):
    """A checkpoint of hlt-core 0.4 names the shipped scheduler by its module path then
    (``hlt_core.schedulers``): a resume reads that as today's path, and ends as it did."""
    shipped = OmegaConf.load(files("hlt_core.configs") / "scheduler" / "warmup_cosine.yaml")
    shipped.scheduler.update(warmup_steps=2, total_steps=6)
    trained(tmp_path / "straight", scheduler=shipped)
    trained(tmp_path / "first", scheduler=shipped, **{"trainer.max_steps": 3})
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    saved = checkpoint["hlt_config"]["scheduler"]["scheduler"]
    assert saved["_target_"] == "hlt_core.training.schedulers.warmup_cosine"
    saved["_target_"] = "hlt_core.schedulers.warmup_cosine"
    torch.save(checkpoint, last)
    trained(tmp_path / "resumed", scheduler=shipped, ckpt_path=str(last))
    straight, resumed = (
        torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
        for name in ("straight", "resumed")
    )
    assert resumed["global_step"] == 6
    for key, value in straight["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key
    saved["_target_"] = "hlt_core.schedulers.another"
    with pytest.raises(UserError, match=r"^scheduler\.scheduler\._target_="):
        check_resumable(str(last), checkpoint, checkpoint["hlt_config"] | {"scheduler": shipped})
