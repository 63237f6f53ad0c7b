"""Training operations in-process: NaN stop, bad checkpoints, evaluate and predict,
loggers, run records and debug presets."""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

import lightning as L
import mlflow
import pyarrow.parquet as pq
import pytest
import torch
import wandb
from lightning.pytorch.callbacks import Callback
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import QUICK, compose_run
from hlt_core.errors import UserError
from hlt_core.run import objective, run, run_or_exit
from hlt_core.training.module import NonFiniteLossError

SHORT = [*QUICK, "trainer.max_epochs=2"]


class PoisonAt(Callback):
    """Puts a NaN into the first weight before training step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, *args) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).view(-1)[0] = float("nan")


def trained(tmp_path: Path, *extra: str) -> Path:
    run_dir = tmp_path / "trained"
    run(compose_run([*SHORT, *extra], run_dir))
    return run_dir


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(run_dir):
    poison = f"+callbacks.poison._target_={__name__}.PoisonAt"
    cfg = compose_run([*SHORT, poison, "+callbacks.poison.step=4"], run_dir)
    stop = r"loss is nan at step 4 \(epoch 1, batch 1\); run stopped, last good checkpoint: "
    with pytest.raises(NonFiniteLossError, match=stop + r".*last\.ckpt; a resume"):
        run(cfg)
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 3  # the end of the first epoch, before the NaN
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())


def test_evaluate_a_checkpoint_writes_results_without_training(tmp_path, run_dir, recwarn):
    ckpt = trained(tmp_path) / "checkpoints" / "last.ckpt"
    recwarn.clear()
    run_or_exit(compose_run([*QUICK, "train=false", f"ckpt_path={ckpt}"], run_dir))
    assert not [w for w in recwarn if "dirpath has changed" in str(w.message)]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["evaluated_checkpoint"] == str(ckpt)
    assert 0.0 <= results["test/acc"] <= 1.0 and "val/loss" not in results
    assert not (run_dir / "checkpoints").exists()  # nothing was trained


def test_predict_writes_a_table_into_the_run_folder_of_the_checkpoint(tmp_path, run_dir, recwarn):
    trained_dir = trained(tmp_path)
    ckpt = trained_dir / "checkpoints" / "last.ckpt"
    overrides = ["train=false", "test=false", "predict=true", f"ckpt_path={ckpt}"]
    recwarn.clear()
    run(compose_run([*QUICK, *overrides], run_dir))
    assert not [w for w in recwarn if "dirpath has changed" in str(w.message)]
    out = trained_dir / "predictions.csv"
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["file", "row", "prediction", "0", "1", "2", "3"]  # simulated: no names
    assert len(rows) == 1 + 40 * 64  # every batch of the test split
    assert {r[2] for r in rows[1:]} <= {"0", "1", "2", "3"}
    assert json.loads((run_dir / "results.json").read_text())["predictions"] == str(out)
    # or where the user says, in Parquet
    parquet = tmp_path / "named" / "p.parquet"
    run(compose_run([*QUICK, *overrides, f"predictions={parquet}"], tmp_path / "again"))
    assert pq.read_table(parquet).num_rows == 40 * 64


def test_train_false_without_a_checkpoint_is_refused(run_dir):
    with pytest.raises(UserError, match="train=false needs ckpt_path"):
        run(compose_run([*QUICK, "train=false"], run_dir))


@pytest.mark.parametrize(
    ("content", "named"),
    [(b"", "not a readable checkpoint"), (b"PK\x03\x04garbage", "not a readable checkpoint")],
)
def test_corrupt_checkpoint_names_its_path(content, named, tmp_path, run_dir):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(content)
    with pytest.raises(UserError, match=f"ckpt_path={bad}: {named}"):
        run(compose_run([*QUICK, f"ckpt_path={bad}"], run_dir))


def test_truncated_checkpoint_names_its_path(tmp_path, run_dir):
    good = trained(tmp_path) / "checkpoints" / "last.ckpt"
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserError, match=f"ckpt_path={cut}: not a readable checkpoint"):
        run(compose_run([*QUICK, f"ckpt_path={cut}"], run_dir))


def test_checkpoint_of_another_architecture_names_the_keys(tmp_path, run_dir):
    ckpt = trained(tmp_path) / "checkpoints" / "last.ckpt"
    other = ["model.num_layers=3", "model.hidden_dim=32", f"ckpt_path={ckpt}"]
    with pytest.raises(UserError, match="another architecture") as error:
        run(compose_run([*QUICK, *other], run_dir))
    assert "model.net." in str(error.value) and "(128, 16) vs (32, 16)" in str(error.value)


def test_results_record_identifies_the_run_and_a_learning_curve_is_drawn(tmp_path):
    run_dir = trained(tmp_path, "seed=3")
    results = json.loads((run_dir / "results.json").read_text())
    for key in ("val/loss", "test/loss", "test/acc", "git_commit", "git_dirty", "host"):
        assert key in results
    assert results["seed"] == 3 and results["status"] == "ok"
    assert results["started_at"] < results["finished_at"]
    for package in ("hlt-core", "hlt-data", "hlt-models", "hlt-tasks", "torch", "lightning"):
        assert results[f"version/{package}"]
    png = run_dir / "learning_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mlflow_logs_into_a_sqlite_store_read_back_by_the_client(tmp_path, run_dir):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run(compose_run([*QUICK, "logger=mlflow", f"logger.mlflow.tracking_uri={uri}"], run_dir))
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("clusters_mlp_classification")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.status == "FINISHED"
    assert "val/loss" in logged.data.metrics and logged.data.params["seed"] == "42"


def test_tensorboard_event_files_hold_every_metric_when_the_run_returns(run_dir):
    run(compose_run([*QUICK, "logger=tensorboard"], run_dir))
    logged = set()  # Lightning opens a new event file for each stage (fit, validate, test)
    for events in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        logged.update(EventAccumulator(str(events)).Reload().Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/loss_best", "test/acc"} <= logged  # all flushed


def test_wandb_runs_offline_into_the_run_folder_and_each_run_is_finished(tmp_path):
    for name in ("first", "second"):  # as the jobs of a multirun: one process, two runs
        run(compose_run([*QUICK, "logger=wandb"], tmp_path / name))
        assert wandb.run is None  # finished, not left for the next run to log into
        assert len(list((tmp_path / name / "wandb").glob("offline-run-*/run-*.wandb"))) == 1


def test_a_wandb_run_warns_nothing_a_user_cannot_act_on(run_dir, capfd, caplog):
    caplog.set_level(logging.INFO, logger="hlt_core.run")
    run_dir.mkdir()  # as Hydra makes it before the job (W&B warns of a missing folder)
    run(compose_run([*QUICK, "logger=wandb", "trainer.log_every_n_steps=1"], run_dir))
    assert capfd.readouterr().err == ""  # no "anonymous" warning, no W&B header or panel
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    # the sync hint once, in the closing block
    assert caplog.text.count("wandb sync") == 1
    assert f"upload W&B run: wandb sync {offline}" in caplog.text


def test_a_logger_that_is_not_installed_says_how_to_install_it(run_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now fails
    with pytest.raises(UserError, match=r"pip install 'hlt-core\[mlflow\]'"):
        run(compose_run([*QUICK, "logger=mlflow"], run_dir))


@pytest.mark.parametrize("preset", ["fast_dev_run", "limit", "profiler", "anomaly", "overfit"])
def test_debug_presets_run(preset, run_dir):
    overrides = [*QUICK, f"debug={preset}"]
    if preset == "overfit":  # its own batch counts; fewer epochs to stay quick
        overrides = [o for o in overrides if "limit_" not in o] + ["trainer.max_epochs=2"]
    metrics = run(compose_run(overrides, run_dir))
    assert "test/loss" in metrics
    if preset == "profiler":
        assert list(run_dir.glob("*profile*.txt"))
    if preset == "overfit":  # 3 batches a epoch, the same ones each time
        assert json.loads((run_dir / "results.json").read_text())["global_step"] == 6


def test_a_run_folder_holding_a_checkpoint_is_not_resumed_unasked(run_dir):
    first = run(compose_run([*SHORT, "test=false"], run_dir))
    steps = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    again = run(compose_run([*SHORT, "test=false"], run_dir))  # same folder, no ckpt_path
    assert (
        torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
        == steps
    )
    assert again["train/loss"] == first["train/loss"]  # trained again from the start


def test_best_so_far_is_logged_each_validation_and_recorded(run_dir):
    run(compose_run([*QUICK, "trainer.max_epochs=4", "test=false"], run_dir))
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        logged = list(csv.DictReader(handle))
    val = [float(r["val/loss"]) for r in logged if r["val/loss"]][:4]  # then the best's
    best = [float(r["val/loss_best"]) for r in logged if r["val/loss_best"]]
    assert len(best) == 4  # after every validation of training
    assert best == [min(val[: i + 1]) for i in range(4)]  # a running minimum
    results = json.loads((run_dir / "results.json").read_text())
    assert results["val/loss_best"] == min(val)
    # the step of the best checkpoint, which the results evaluate
    assert results["val/loss_best_step"] == results["best_step"]
    assert results["val/loss"] == pytest.approx(results["val/loss_best"], abs=1e-6)
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["callbacks"]
    # a resume goes on from it
    assert state["RunCallbacks"]["BestSoFar"]["value"] == results["val/loss_best"]
    (saved_by,) = [v for k, v in state.items() if k.startswith("ModelCheckpoint")]
    assert float(saved_by["best_model_score"]) == pytest.approx(results["val/loss_best"])


def test_a_run_shorter_than_an_epoch_is_judged_by_its_evaluated_checkpoint(run_dir):
    # issue 27: no validation ran in fit, so each trial of a search failed on val/loss_best
    cfg = compose_run([*QUICK, "trainer.limit_train_batches=5", "trainer.max_steps=2",
                       "test=false", "optimized_metric=val/loss_best"], run_dir)  # fmt: skip
    metrics = run(cfg)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["global_step"] == 2 and results["val/loss_best_step"] == 2
    assert results["val/loss_best"] == results["val/loss"]  # the evaluated (last) checkpoint's
    assert objective(cfg, metrics) == results["val/loss"]


def test_two_validations_per_epoch(run_dir):
    run(compose_run([*QUICK, "trainer.limit_train_batches=4", "trainer.val_check_interval=0.5",
                     "trainer.max_epochs=2", "test=false"], run_dir))  # fmt: skip
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        steps = [int(r["step"]) for r in csv.DictReader(handle) if r["val/loss"]]
    assert len(steps) == 4 + 1  # two per epoch, then the best checkpoint's validation
    assert json.loads((run_dir / "results.json").read_text())["global_step"] == 8


def test_evaluating_the_best_checkpoint_again_gives_the_trained_run_numbers(tmp_path, run_dir):
    trained_dir = trained(tmp_path)
    first = json.loads((trained_dir / "results.json").read_text())
    run_or_exit(compose_run([*QUICK, "train=false", f"ckpt_path={first['best_checkpoint']}"],
                            run_dir))  # fmt: skip
    again = json.loads((run_dir / "results.json").read_text())
    for key in ("test/loss", "test/acc", "test/f1"):
        assert again[key] == pytest.approx(first[key], abs=1e-6), key
