"""The workspace's tools work together on one lock (issue 26): MLflow 3's SQL store runs
on the SQLAlchemy 2 that Optuna 4 uses too, and `uv run pre-commit install` has its tool."""

from __future__ import annotations

import subprocess
import sys

import optuna
from mlflow.tracking import MlflowClient


def test_mlflow_and_optuna_open_their_sqlite_stores_in_one_process(tmp_path):
    # what `mlflow ui --backend-store-uri sqlite:///...` opens
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    run = client.create_run("0")
    client.log_metric(run.info.run_id, "val/loss", 0.5)
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert client.get_run(run.info.run_id).data.metrics == {"val/loss": 0.5}
    url = f"sqlite:///{tmp_path}/optuna.db"  # a sweep's study, on the same SQLAlchemy
    study = optuna.create_study(study_name="s", storage=url)
    study.tell(study.ask(), 1.0)
    assert optuna.load_study(study_name="s", storage=url).best_value == 1.0


def test_pre_commit_is_in_the_dev_group():
    done = subprocess.run([sys.executable, "-m", "pre_commit", "--version"], capture_output=True)
    assert done.returncode == 0 and done.stdout.startswith(b"pre-commit ")
