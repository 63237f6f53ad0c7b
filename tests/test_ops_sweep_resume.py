"""Resuming an interrupted sweep through the command line: the same command into the same
sweep folder ends with exactly the planned jobs, each run once (grid and Optuna)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import lightning as L
import optuna
import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback as HydraCallback
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from helpers import TINY, rows, trainer
from hydra_plugins.hlt_optuna_sweeper.hlt_optuna_sweeper import JOB, job_folder

COMPLETE, FAIL = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL

pytestmark = pytest.mark.cli


class StopJob(Callback):
    """After the first training step, job ``$HLT_TEST_FAIL_JOB`` fails and job
    ``$HLT_TEST_KILL_JOB`` SIGKILLs the whole sweep, as a lost machine would."""

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        job = str(HydraConfig.get().job.num)
        if job == os.environ.get("HLT_TEST_KILL_JOB"):
            os.kill(os.getpid(), signal.SIGKILL)
        if job == os.environ.get("HLT_TEST_FAIL_JOB"):
            raise RuntimeError("failed on purpose")


class KillAfterJob(HydraCallback):
    """SIGKILLs the sweep right after job ``$HLT_TEST_KILL_JOB`` ended, before the
    sweeper hears of it."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if str(config.hydra.job.num) == os.environ.get("HLT_TEST_KILL_JOB"):
            os.kill(os.getpid(), signal.SIGKILL)


STOP = f"+callbacks.stop._target_={__name__}.StopJob"


def results(sweep: Path, job: int) -> dict:
    return json.loads((sweep / str(job) / "results.json").read_text())


def job_folders(sweep: Path) -> list[str]:
    return sorted(p.name for p in sweep.iterdir() if (p / ".hydra").is_dir())


def test_a_killed_grid_sweep_rerun_runs_only_the_jobs_not_done(tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    command = ["-m", *TINY, "seed=1,2,3", STOP, f"hydra.sweep.dir={sweep}"]
    monkeypatch.setenv("HLT_TEST_FAIL_JOB", "1")
    monkeypatch.setenv("HLT_TEST_KILL_JOB", "2")
    assert trainer(*command).returncode == -signal.SIGKILL
    before = [results(sweep, 0), results(sweep, 1)]
    assert [r["status"] for r in before] == ["ok", "failed"]
    assert not (sweep / "2" / "results.json").exists()  # killed inside its first step

    monkeypatch.delenv("HLT_TEST_FAIL_JOB")
    monkeypatch.delenv("HLT_TEST_KILL_JOB")
    done = trainer(*command)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"job 0 already done in {sweep / '0'}: skipped" in done.stdout
    assert job_folders(sweep) == ["0", "1", "2"]
    assert [r["status"] for r in rows(sweep)] == ["ok", "ok", "ok"]  # the summary of all 3
    assert results(sweep, 0) == before[0]  # not run again
    assert results(sweep, 1)["started_at"] > before[1]["finished_at"]  # the failed one ran again


def test_a_sweep_folder_of_another_sweep_is_refused_in_one_line(tmp_path):
    sweep = tmp_path / "sweep"
    (sweep / "0").mkdir(parents=True)
    other = json.dumps({"status": "ok", "overrides": "seed=7", "val/loss": 0.5})
    (sweep / "0" / "results.json").write_text(other)
    done = trainer("-m", *TINY, "seed=1,2", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 2
    error = f"error: {sweep / '0'} holds the results of another job ('seed=7', this job: "
    assert done.stderr.strip().splitlines()[-1].startswith(error)
    assert "Traceback" not in done.stderr
    assert (sweep / "0" / "results.json").read_text() == other  # nothing of it lost
    assert not (sweep / "1").exists()  # the sweep stopped there


def test_a_killed_optuna_search_resumed_ends_with_n_trials_each_in_its_own_folder(
    tmp_path, monkeypatch
):
    sweep = tmp_path / "optuna"
    command = [
        "-m", "hparams_search=clusters_optuna", *TINY, "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.n_startup_trials=3", f"hydra.sweep.dir={sweep}",
        f"+hydra.callbacks.stop._target_={__name__}.KillAfterJob",
    ]  # fmt: skip
    monkeypatch.setenv("HLT_TEST_KILL_JOB", "1")
    assert trainer(*command).returncode == -signal.SIGKILL
    first = [results(sweep, 0), results(sweep, 1)]  # trial 1: done, but never told

    monkeypatch.delenv("HLT_TEST_KILL_JOB")
    done = trainer(*command)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Trial 1 was left running by a stopped worker" in done.stdout
    assert "Trial 2 runs trial 1's job again" in done.stdout  # queued again, same job
    assert f"job 1 already done in {sweep / '1'}: skipped" in done.stdout
    study = optuna.load_study(study_name=first[0]["name"], storage=f"sqlite:///{sweep}/optuna.db")
    states = [t.state for t in study.trials]
    assert states == [COMPLETE, FAIL, COMPLETE, COMPLETE]  # trial 1 failed, run again as 2
    complete = [t for t in study.trials if t.state == COMPLETE]
    assert complete[2].params != complete[0].params  # not the seed's first draw again
    assert job_folders(sweep) == ["0", "1", "3"]  # a job folder per planned trial
    assert [results(sweep, 0), results(sweep, 1)] == first  # neither ran again
    for trial in complete:
        folder = job_folder(trial)
        assert results(sweep, folder)["val/loss_best"] == pytest.approx(trial.value)
        assert sorted(results(sweep, folder)["overrides"].split()) == sorted(
            trial.user_attrs[JOB]["overrides"]
        )  # the whole recorded job ran
    assert [r["status"] for r in rows(sweep)] == ["ok", "ok", "ok"]


def test_a_crafted_optuna_db_writes_nothing_outside_the_sweep_folder(tmp_path):
    """Issue 27: a trial left running whose attributes hold file-writing callbacks."""
    sweep, victim = tmp_path / "optuna", tmp_path / "victim.txt"
    victim.write_text("kept")
    sweep.mkdir()
    study = optuna.create_study(study_name="crafted", storage=f"sqlite:///{sweep}/optuna.db")
    trial = study.ask()
    attrs = {
        "+callbacks.a._target_": "builtins.open", "+callbacks.a.file": str(victim),
        "+callbacks.a.mode": "w", "+callbacks.b._target_": "shutil.copyfile",
        "+callbacks.b.src": str(victim), "+callbacks.b.dst": str(tmp_path / "copied.txt"),
    }  # fmt: skip
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    done = trainer(
        "-m", "hparams_search=clusters_optuna", *TINY, "hydra.sweeper.study_name=crafted",
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: study crafted in sqlite:///{sweep}/optuna.db: trial 0: ")
    assert "+callbacks.a._target_" in error and "Traceback" not in done.stderr
    assert victim.read_text() == "kept" and not (tmp_path / "copied.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optuna", "victim.txt"]
    assert sorted(p.name for p in sweep.iterdir()) == ["optuna.db"]  # no job ran


def test_an_optuna_search_whose_every_trial_fails_goes_on_and_exits_3(tmp_path):
    sweep = tmp_path / "optuna"
    done = trainer(
        "-m", "hparams_search=clusters_optuna", *TINY, "data.batch_size=0",
        "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr[-2000:]
    assert "Values were told" not in done.stderr and "Traceback" not in done.stderr
    assert "error: 2 of 2 jobs failed (jobs 0, 1)" in done.stderr
    (name,) = optuna.get_all_study_names(f"sqlite:///{sweep}/optuna.db")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state for t in study.trials] == [FAIL, FAIL]  # each told once, none left running
