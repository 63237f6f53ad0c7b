"""The command line itself: config-only commands, user errors, and the default run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1]


def trainer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, str(APP), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def test_searchpath_lists_every_installed_package():
    done = trainer("--info", "searchpath")
    assert done.returncode == 0, done.stderr
    for name in ("hlt-core", "hlt-data", "hlt-models", "hlt-tasks"):
        assert f"| {name} " in done.stdout


def test_help_lists_the_config_groups():
    done = trainer("--help")
    assert done.returncode == 0, done.stderr
    for group in ("model:", "data:", "task:", "trainer:", "experiment:"):
        assert group in done.stdout


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("trainer.max_epochs=abc", "full_key: trainer.max_epochs"),
        ("no_such_key=1", "Key 'no_such_key' not in"),
        ("model=nosuch", "Could not find 'model/nosuch'"),
        ("ckpt_path=/no/such/file.ckpt", "ckpt_path=/no/such/file.ckpt: no such file"),
    ],
)
def test_user_errors_exit_nonzero_with_a_short_message(override, named, tmp_path):
    done = trainer(override, "print_config=false", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2  # the same status for Hydra's config errors and the app's
    assert named in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.cli
def test_default_command_trains_and_writes_the_run_folder(tmp_path):
    done = trainer(f"hydra.run.dir={tmp_path}/run")
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    assert (run / ".hydra" / "config.yaml").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert list((run / "checkpoints").glob("best-*.ckpt"))
    assert (run / "csv" / "metrics.csv").is_file()
    results = json.loads((run / "results.json").read_text())
    assert results["test/acc"] > 0.6  # chance is 0.25 on the default 4-class data
    assert "── data" in done.stdout  # the resolved config printed as a tree
