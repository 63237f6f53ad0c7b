"""Training operations through the command line: sweeps (grid, Optuna, failing job,
joblib, submitit), DDP on 2 CPU processes, and SIGTERM/SIGINT during training."""

from __future__ import annotations

import json
import os
import signal

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback

from helpers import TINY, rows, trainer

pytestmark = pytest.mark.cli


class SignalAt(Callback):
    """Sends ``signum`` to this very process after training step ``step``."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def test_grid_sweep_in_parallel_records_a_failing_job_and_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    done = trainer(
        "-m", *TINY, "hydra/launcher=local_parallel", "optimizer.lr=0.01,-1",
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert done.returncode == 3, done.stderr[-2000:]  # after finishing the other job
    assert "error: 1 of 2 jobs failed (jobs 1)" in done.stderr
    ok, failed = rows(sweep)
    assert ok["status"] == "ok" and float(ok["val/loss"]) > 0
    assert ok["best"] == "★" and failed["best"] == ""  # marked in the table and the CSV
    assert failed["status"] == "failed" and "Invalid learning rate: -1" in failed["error"]
    assert "failed: " in done.stdout  # the terminal table
    assert (sweep / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_a_search_without_multirun_is_refused_in_one_line(tmp_path):
    done = trainer("hparams_search=clusters_optuna", *TINY, f"hydra.run.dir={tmp_path / 'r'}")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: this config searches hydra.sweeper.params (an hparams_search): "
        "run it as a sweep, with -m"
    ]
    assert not (tmp_path / "r" / "results.json").exists()  # nothing trained


def test_sweep_over_an_unknown_key_names_it_before_any_job(tmp_path):
    sweep = tmp_path / "sweep"
    done = trainer("-m", *TINY, "no_such_key=1,2", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 2  # Hydra's config errors exit as the app's user errors do
    assert "no_such_key" in done.stderr and "Traceback" not in done.stderr
    assert not list(sweep.glob("*/results.json"))


def test_optuna_search_minimises_the_returned_metric(tmp_path):
    sweep = tmp_path / "optuna"
    done = trainer(
        "-m", "hparams_search=clusters_optuna", *TINY, "hydra.sweeper.n_trials=4",
        "hydra.sweeper.sampler.n_startup_trials=2", f"hydra.sweep.dir={sweep}",
        "trainer.log_every_n_steps=1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""  # no warning a user cannot act on, no coloured Optuna lines
    assert "\x1b[" not in done.stdout and "] A new study created" in done.stdout
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = rows(sweep)
    assert len(trials) == 4 and all(t["status"] == "ok" for t in trials)
    assert best["best_value"] == pytest.approx(min(float(t["val/loss_best"]) for t in trials))
    assert set(best["best_params"]) == {"optimizer.lr", "model.hidden_dim", "model.dropout"}
    assert "alembic" not in done.stdout + done.stderr  # storage set-up noise is silenced
    starred = [t for t in trials if t["best"] == "★"]
    assert [float(t["val/loss_best"]) for t in starred] == [best["best_value"]]


def test_submitit_local_launcher_runs_the_job(tmp_path):
    sweep = tmp_path / "submitit"
    done = trainer("-m", *TINY, "hydra/launcher=local_submitit", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((sweep / "0" / "results.json").read_text())
    assert results["status"] == "ok" and "test/acc" in results
    assert list((sweep / ".submitit").rglob("*_result.pkl"))


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_training_saves_a_checkpoint_and_exits_cleanly(signum, code, tmp_path):
    run_dir = tmp_path / "run"
    kill = f"+callbacks.kill._target_={__name__}.SignalAt"
    done = trainer(
        *TINY, "trainer.limit_train_batches=10", f"hydra.run.dir={run_dir}", kill,
        "+callbacks.kill.step=3", f"+callbacks.kill.signum={int(signum)}",
    )  # fmt: skip
    last = run_dir / "checkpoints" / "last.ckpt"
    assert done.returncode == code, done.stderr[-2000:]
    command = f"uv run apps/trainer resume={run_dir}"  # the same run, in its own folder
    assert f"{signal.Signals(signum).name} at step 3: saved {last}; resume with: {command}" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert torch.load(last, weights_only=False)["global_step"] == 3
    # its saved overrides, but code to run (a _target_) only when given again
    resumed = trainer(f"resume={run_dir}", kill)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["global_step"] == 10 and results["resumed"] == str(run_dir)


def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path):
    # Same global batch (2 x 32 vs 64) and the same number of steps (2 epochs x 20).
    common = ["trainer.max_epochs=2", "trainer.enable_progress_bar=false", "print_config=false",
              "data.val_batches=20", "data.test_batches=20"]  # fmt: skip
    one = trainer(*common, "data.batch_size=64", "data.train_batches=20",
                  f"hydra.run.dir={tmp_path / 'one'}")  # fmt: skip
    two = trainer(*common, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                  "data.batch_size=32", "data.train_batches=40",
                  f"hydra.run.dir={tmp_path / 'two'}")  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    a = json.loads((tmp_path / "one" / "results.json").read_text())
    b = json.loads((tmp_path / "two" / "results.json").read_text())
    assert a["global_step"] == b["global_step"] == 40
    # one run folder: no second timestamped folder from the second rank
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    assert len(list((tmp_path / "two" / "checkpoints").glob("last.ckpt"))) == 1
    print(f"DDP test/loss 1 proc {a['test/loss']:.4f}, 2 procs {b['test/loss']:.4f}")
    assert abs(a["test/loss"] - b["test/loss"]) < 0.05
