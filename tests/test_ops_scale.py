"""Sweeps that scale out, through the command line: each job of a multirun gets its own
logger runs (closed even when the job fails), DDP inside a grid or an Optuna sweep
serves one job per launch, and ``ddp_spawn`` is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import mlflow
import pytest
import yaml
from lightning.pytorch.callbacks import Callback

from helpers import TINY, rows, trainer

pytestmark = pytest.mark.cli
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]


class FailAt(Callback):
    """Raises after training step ``step`` (never, if the run is shorter)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"failing on purpose [step {self.step}]")  # [..] is not markup


def job_folders(sweep: Path) -> list[str]:
    return sorted(p.name for p in sweep.iterdir() if (p / ".hydra").is_dir())


def test_each_job_gets_its_own_wandb_and_mlflow_run_closed_even_when_it_fails(tmp_path):
    sweep, uri = tmp_path / "sweep", f"sqlite:///{tmp_path}/mlflow.db"
    done = trainer(
        "-m", *TINY, "logger=[wandb,mlflow]", f"logger.mlflow.tracking_uri={uri}",
        f"+callbacks.fail._target_={__name__}.FailAt", "+callbacks.fail.step=99,1",
        "trainer.log_every_n_steps=1", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr[-2000:]  # job 1 failed, job 0 did not
    # the failure said once, and nothing else: no MLflow notes, no W&B lines
    failed = f"error: 1 of 2 jobs failed (jobs 1); see {sweep / 'summary.csv'}"
    assert done.stderr.splitlines() == [failed]
    assert [r["status"] for r in rows(sweep)] == ["ok", "failed"]
    for job in ("0", "1"):  # not job 1 writing into job 0's run
        assert len(list((sweep / job / "wandb").glob("offline-run-*/run-*.wandb"))) == 1
    assert "already in progress" not in done.stdout + done.stderr
    (offline,) = (sweep / "0" / "wandb").glob("offline-run-*")
    assert done.stdout.count("wandb sync") == 1  # the job that ended: in its closing block
    assert f"upload W&B run: wandb sync {offline}" in done.stdout
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("clusters_mlp_classification")
    logged = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.status for r in logged) == ["FAILED", "FINISHED"]


def test_ddp_jobs_of_a_grid_sweep_each_serve_their_own_job(tmp_path):
    sweep = tmp_path / "sweep"
    done = trainer(
        "-m", *TINY, *DDP, "seed=1,2", "trainer.log_every_n_steps=1", f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""  # nothing a user cannot act on, from any rank of either job
    assert done.stdout.count("Launching 2 jobs") == 1  # the second rank launched no sweep
    assert done.stdout.count("┃ job ") == 1  # one summary table
    assert job_folders(sweep) == ["0", "1"]
    assert not (tmp_path / "outputs").exists()  # no stray sweep of a second rank
    for job, seed in (("0", 1), ("1", 2)):
        results = json.loads((sweep / job / "results.json").read_text())
        assert results["seed"] == seed and results["status"] == "ok"
        assert results["global_step"] == 2  # limit_train_batches=2 on each process
        assert (sweep / job / "rank_1.log").is_file()  # its rank 1 ran this job


def test_optuna_sweep_with_ddp_and_a_logger_asks_each_trial_once(tmp_path):
    sweep = tmp_path / "optuna"
    done = trainer(
        "-m", "hparams_search=clusters_optuna", *TINY, *DDP, "logger=csv",
        "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("Launching 1 jobs") == 2  # one trial at a time, each asked once
    assert job_folders(sweep) == ["0", "1"]
    trials = rows(sweep)
    assert [t["status"] for t in trials] == ["ok", "ok"]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(float(t["val/loss_best"]) for t in trials))
    for job in ("0", "1"):  # each job's own log, with the trial's best so far
        header = (sweep / job / "csv" / "metrics.csv").read_text().splitlines()[0]
        assert "val/loss_best" in header.split(",")


def test_ddp_spawn_is_refused_naming_what_to_use(tmp_path):
    done = trainer(*TINY, *DDP, "trainer.strategy=ddp_spawn", f"hydra.run.dir={tmp_path / 'r'}")
    assert done.returncode == 2
    assert "error: trainer.strategy=ddp_spawn" in done.stderr
    assert "use trainer.strategy=ddp" in done.stderr and "Traceback" not in done.stderr
