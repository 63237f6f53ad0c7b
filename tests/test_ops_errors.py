"""One line for every user error, found before training where it can be: changed
optimizer settings on resume, a weights-only checkpoint, a bad optimizer value, a full
disk, exhausted memory, a run that trains nothing, damaged checkpoints and sweep records."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

import hlt_core.results.records as records
import hlt_core.run as run_module
from helpers import QUICK, compose_run
from hlt_core.errors import UserError
from hlt_core.jobs.sweep_resume import finished_run
from hlt_core.jobs.sweeps import collect
from hlt_core.run import run, run_or_exit


@pytest.fixture
def checkpoint(tmp_path_factory):
    """last.ckpt of a short default run."""
    run_dir = tmp_path_factory.mktemp("first") / "run"
    run(compose_run([*QUICK, "test=false"], run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.lr=0.0001", "optimizer.lr=0.0001 differs from the checkpoint's 0.001"),
        ("optimizer=sgd", "optimizer._target_=torch.optim.SGD differs"),
        ("scheduler=cosine", "scheduler differs from the checkpoint's (it was trained with none)"),
    ],
)
def test_a_resume_that_changes_optimizer_settings_is_refused(checkpoint, override, key, run_dir):
    cfg = compose_run([*QUICK, f"ckpt_path={checkpoint}", override], run_dir)
    with pytest.raises(UserError, match=re.escape(key)):
        run(cfg)
    assert not (run_dir / "checkpoints").exists()  # refused before training


def test_the_same_settings_resume(checkpoint, run_dir):
    cfg = compose_run([*QUICK, f"ckpt_path={checkpoint}", "trainer.max_epochs=2"], run_dir)
    assert run(cfg)  # trains on from the checkpoint


def test_a_weights_only_checkpoint_cannot_resume_but_can_be_evaluated(checkpoint, tmp_path):
    weights = tmp_path / "weights.ckpt"
    saved = torch.load(checkpoint, weights_only=True)
    torch.save({"state_dict": saved["state_dict"], "hlt_config": saved["hlt_config"]}, weights)
    cfg = compose_run([*QUICK, f"ckpt_path={weights}"], tmp_path / "resume")
    with pytest.raises(UserError, match=r"holds weights only .* evaluate it with train=false"):
        run(cfg)
    cfg = compose_run([*QUICK, f"ckpt_path={weights}", "train=false"], tmp_path / "eval")
    assert "test/acc" in run(cfg)


def test_a_bad_optimizer_value_is_one_line_before_training(run_dir):
    cfg = compose_run([*QUICK, "optimizer.lr=-0.5"], run_dir)
    with pytest.raises(UserError, match=r"^optimizer: Invalid learning rate: -0\.5$"):
        run(cfg)
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/runs/x/last.ckpt"),
            "error: disk full writing /runs/x/last.ckpt: free space, then resume",
        ),
        (MemoryError("cannot allocate 40 GiB"), "error: out of memory (cannot allocate 40 GiB)"),
        (
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
            "error: out of memory (CUDA out of memory.",
        ),
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't "
                "allocate memory: you tried to allocate 42949672960 bytes. Error code 12"
            ),
            "error: out of memory ([enforce fail at alloc_cpu.cpp:117] data.",
        ),
    ],
)
def test_full_disk_and_exhausted_memory_are_named_in_one_line(
    error, said, run_dir, monkeypatch, capsys
):
    def fail(cfg):
        raise error

    monkeypatch.setattr(run_module, "run", fail)
    cfg = compose_run(QUICK, run_dir)
    run_dir.mkdir(parents=True)  # made by Hydra before the job starts
    with pytest.raises(SystemExit) as stop:
        run_or_exit(cfg)
    assert stop.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(said)
    record = json.loads((run_dir / "results.json").read_text())
    assert record["status"] == "failed" and said.removeprefix("error: ") in record["error"]


def test_a_disk_too_full_for_results_json_still_ends_in_one_line(run_dir, monkeypatch, capsys):
    full = OSError(errno.ENOSPC, "No space left on device")

    def fail(*args, **kwargs):
        raise full

    monkeypatch.setattr(run_module, "run", fail)
    monkeypatch.setattr(records, "write_text_atomic", fail)
    cfg = compose_run(QUICK, run_dir)
    run_dir.mkdir(parents=True)
    with pytest.raises(SystemExit) as stop:
        run_or_exit(cfg)
    assert stop.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: disk full: free space")


@pytest.mark.parametrize("override", ["trainer.max_epochs=0", "trainer.max_steps=0"])
def test_training_nothing_is_refused_before_anything_is_built(override, run_dir):
    cfg = compose_run([*QUICK, override], run_dir)
    key = override.split("=")[0]
    with pytest.raises(UserError, match=rf"^{re.escape(key)}=0 with train=true trains nothing"):
        run(cfg)
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("saved", "message"),
    [
        ({"state_dict": [1, 2]}, "its state_dict is a list, not named weights"),
        ({"state_dict": {"model.net.0.weight": "abc"}},
         r"state_dict\['model\.net\.0\.weight'\] is a str, not a tensor"),
    ],
    ids=["list", "string-weight"],
)  # fmt: skip
def test_a_damaged_checkpoint_is_one_line(saved, message, tmp_path):
    path = tmp_path / "damaged.ckpt"
    torch.save(saved, path)
    cfg = compose_run([*QUICK, f"ckpt_path={path}", "train=false"], tmp_path / "eval")
    with pytest.raises(UserError, match=rf"^ckpt_path={re.escape(str(path))}: {message}$"):
        run(cfg)


def sweep_job(run_dir: Path, results: str) -> DictConfig:
    """Job ``seed=3`` of a multirun whose folder already holds ``results``."""
    cfg = compose_run(
        ["hydra.mode=MULTIRUN", "hydra.job.num=0", "seed=3", "optimized_metric=val/loss"], run_dir
    )
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(results)
    return cfg


OVERRIDES = '"overrides": "seed=3 optimized_metric=val/loss"'


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ("{not json", "not a readable JSON file"),
        ("[1, 2]", "holds a JSON list, not an object"),
        (f'{{"status": "ok", {OVERRIDES}}}', "status ok but no number for val/loss"),
        (f'{{"status": "ok", "val/loss": 0.5, "job": "0", {OVERRIDES}}}',
         "holds a 'job' key, which no run's record has"),
    ],
    ids=["not-json", "list", "no-metric", "job-key"],
)  # fmt: skip
def test_a_damaged_results_json_in_a_sweep_folder_is_one_line(results, message, run_dir, capsys):
    cfg = sweep_job(run_dir, results)
    with pytest.raises(SystemExit) as stop:
        finished_run(cfg)
    assert stop.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {run_dir / 'results.json'}: {message}")


def test_a_finished_job_is_still_skipped(run_dir):
    cfg = sweep_job(run_dir, f'{{"status": "ok", "val/loss": 0.5, {OVERRIDES}}}')
    assert finished_run(cfg)["val/loss"] == 0.5


def test_the_sweep_summary_shows_a_damaged_record_as_a_failed_job(tmp_path):
    for job, text in (("0", '{"status": "ok", "val/loss": 0.5}'), ("1", "[1]")):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / "results.json").write_text(text)
    ok, damaged = collect(tmp_path)
    assert (ok["job"], ok["status"]) == ("0", "ok")
    assert damaged["job"] == "1" and damaged["status"] == "failed"
    assert (
        damaged["error"] == f"{tmp_path / '1' / 'results.json'}: holds a JSON list, not an object"
    )
