"""Resume means the same run: ``resume=<run folder>`` (or a training ``ckpt_path=`` inside
a run folder) replays the run's own overrides into its own folder, refuses a change to
the run in one line, applies and records the safe ones; the stop message prints the
command that resumes; a job of a re-run sweep continues its own last.ckpt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import read_write

from helpers import QUICK, compose_run
from hlt_core.errors import UserError
from hlt_core.jobs.ddp_jobs import rank_argv
from hlt_core.jobs.resume import resume_argv, resume_command
from hlt_core.run import run
from hlt_trainer.app import launch_argv

SAVED = ["model.hidden_dim=32", "trainer.max_epochs=3", "seed=7"]


@pytest.fixture
def stopped(tmp_path: Path) -> Path:
    """A run folder as a stopped run leaves it: its overrides and a last.ckpt."""
    folder = tmp_path / "outputs" / "x" / "runs" / "r"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in SAVED))
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"")
    return folder


def test_resume_replays_the_runs_overrides_into_its_folder(stopped):
    last = stopped / "checkpoints" / "last.ckpt"
    expected = ["app", *SAVED, f"resume='{stopped}'", "resume_changes=[]",
                f"ckpt_path='{last}'", f"hydra.run.dir='{stopped}'"]  # fmt: skip
    assert resume_argv(["app", f"resume={stopped}"]) == expected
    assert resume_argv(["app", f"ckpt_path={last}"]) == expected  # a checkpoint of a run
    assert resume_argv(["app", "model.hidden_dim=32", f"resume={stopped}"]) == expected
    assert resume_argv(["app", "train=false", f"ckpt_path={last}"]) is None  # evaluates
    assert resume_argv(["app", "seed=1"]) is None


def test_a_ddp_process_lightning_starts_keeps_rank_0s_resolved_resume(stopped):
    resolved = resume_argv(["app", f"resume={stopped}"])
    assert resolved is not None
    # Lightning starts rank 1 with rank 0's arguments and its own hydra settings
    child = [*resolved, f'hydra.run.dir="{stopped}"', "hydra.job.name=train_ddp_process_1",
             "hydra.output_subdir=null"]  # fmt: skip
    assert launch_argv(child, {"LOCAL_RANK": "1"}) == rank_argv(child, {"LOCAL_RANK": "1"})


def test_a_safe_change_is_applied_and_recorded(stopped, run_dir):
    argv = resume_argv(["app", f"resume={stopped}", "trainer.max_epochs=40", "logger=none"])
    assert argv is not None
    assert "trainer.max_epochs=3" not in argv and "trainer.max_epochs=40" in argv
    # Hydra reads the rebuilt command line as the resumed run's config
    cfg = compose_run([a for a in argv[1:] if not a.startswith("hydra.run.dir")], run_dir)
    assert cfg.trainer.max_epochs == 40 and cfg.model.hidden_dim == 32 and cfg.seed == 7
    assert cfg.resume == str(stopped) and cfg.ckpt_path == str(stopped / "checkpoints/last.ckpt")
    assert list(cfg.resume_changes) == ["trainer.max_epochs=40", "logger=none"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("model.hidden_dim=64", "hidden_dim=64 would change the run (saved: model.hidden_dim=32)"),
        ("optimizer.lr=0.1", "optimizer.lr=0.1 would change the run (saved: not set)"),
        ("hydra.run.dir=elsewhere", "continues the run in its own folder, not elsewhere"),
        ("-m", "continues one run; a sweep resumes by running it again"),
    ],
)  # fmt: skip
def test_a_change_to_the_run_is_refused_in_one_line(stopped, given, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resume_argv(["app", f"resume={stopped}", given])


def test_a_folder_that_is_not_a_run_or_replays_a_target_is_refused(stopped, tmp_path):
    with pytest.raises(UserError, match="not a run folder"):
        resume_argv(["app", f"resume={tmp_path}"])
    (stopped / ".hydra" / "overrides.yaml").write_text("- model._target_=os.system\n")
    with pytest.raises(UserError, match="sets model._target_, which is not replayed"):
        resume_argv(["app", f"resume={stopped}"])
    given = ["app", f"resume={stopped}", "model._target_=os.system"]  # typed again: kept
    assert "model._target_=os.system" in (resume_argv(given) or [])
    (stopped / "checkpoints" / "last.ckpt").unlink()
    (stopped / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    with pytest.raises(UserError, match="no .*last.ckpt to resume from"):
        resume_argv(["app", f"resume={stopped}"])


def test_the_stop_message_names_the_command_that_resumes(tmp_path, run_dir, monkeypatch):
    assert resume_command(tmp_path) == f"uv run apps/trainer resume={tmp_path}"
    compose_run(["hydra.sweep.dir=sw"], run_dir)  # a job of a sweep: the sweep's command
    with read_write(HydraConfig.get()):
        HydraConfig.get().mode = RunMode.MULTIRUN
    monkeypatch.setattr("sys.argv", ["app", "-m", "seed=1,2", "hydra.sweep.dir=sw"])
    sweep = Path("sw").resolve()
    assert resume_command(run_dir) == f"uv run apps/trainer -m seed=1,2 hydra.sweep.dir={sweep}"


def test_a_job_of_a_resumed_sweep_continues_its_own_last_checkpoint(run_dir):
    first = run(compose_run([*QUICK, "test=false"], run_dir))
    assert "train/loss" in first
    cfg = compose_run([*QUICK, "test=false", "trainer.max_epochs=2"], run_dir)
    with read_write(HydraConfig.get()):
        HydraConfig.get().mode = RunMode.MULTIRUN  # as in a sweep run again into its folder
    run(cfg)
    record = json.loads((run_dir / "results.json").read_text())
    assert record["global_step"] == 6  # 3 steps of epoch 1 kept, 3 of epoch 2 added
