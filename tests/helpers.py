"""Helpers for the integration tests: compose the trainer's config with Hydra's compose
API, as the app would, without spawning a process; or run the trainer's command line
(``trainer``) where the CLI itself is under test."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from hlt_core.hydra_compat import VERSION_BASE
from hlt_core.schemas import register_schemas

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))

# Small and quick: enough to show a config trains end to end.
QUICK = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "print_config=false",
]


def compose_run(overrides: Sequence[str], run_dir: Path) -> DictConfig:
    """The config the app would see for ``overrides``, with its run folder at ``run_dir``."""
    register_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        cfg = compose(
            "train",
            overrides=[*overrides, f"hydra.run.dir={run_dir}"],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
        del cfg.hydra
    return cfg


APP = REPO / "apps" / "trainer"
# The command line's smallest run: one epoch of two steps, one val and one test batch.
TINY = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "print_config=false",
]


def trainer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``uv run apps/trainer *args`` as a user runs it (the tests folder importable, for
    test callbacks named by ``_target_``)."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, str(APP), *args],
        capture_output=True, text=True, env=env, timeout=600, cwd=cwd,
    )  # fmt: skip


def rows(sweep_dir: Path) -> list[dict[str, str]]:
    """The sweep's summary.csv, a dict per job."""
    with (sweep_dir / "summary.csv").open() as handle:
        return list(csv.DictReader(handle))
