"""The Hydra entry point. Config-only commands (--help, --cfg, --info) import no torch."""

from __future__ import annotations

import os
import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from hlt_core.ddp_jobs import ddp_job_argv
from hlt_core.errors import USER_ERROR
from hlt_core.hydra_compat import HYDRA_MAIN
from hlt_core.schemas import register_schemas
from hlt_core.sweep_resume import finished_run
from hlt_core.sweeps import check_search_mode
from hlt_trainer.paths import config_dir

register_schemas()
_started = False  # whether a job reached the task function


@hydra.main(config_path=config_dir(), config_name="train", **HYDRA_MAIN)
def _main(cfg: DictConfig) -> Any:
    global _started
    _started = True
    check_search_mode()
    done = finished_run(cfg)  # a job of a resumed sweep that already ended ok
    from hlt_core.run import objective, run_or_exit  # torch and Lightning: only for real work

    return objective(cfg, done) if done is not None else run_or_exit(cfg)


def main() -> Any:
    """Hydra's app, with its config errors (an unknown key or option, a bad value: Hydra
    exits 1 before any job starts) given the app's user-error status. A DDP process
    started by a job of a multirun runs that job alone (``hlt_core.ddp_jobs``)."""
    job_argv = ddp_job_argv(sys.argv, os.environ)
    if job_argv is not None:
        sys.argv = job_argv
    try:
        return _main()
    except SystemExit as stop:
        if stop.code == 1 and not _started:
            raise SystemExit(USER_ERROR) from None
        raise
