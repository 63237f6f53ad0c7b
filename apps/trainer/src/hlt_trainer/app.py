"""The Hydra entry point. Config-only commands (--help, --cfg, --info) import no torch."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from hlt_core.hydra_compat import HYDRA_MAIN
from hlt_core.schemas import register_schemas
from hlt_trainer.paths import config_dir

register_schemas()
USER_ERROR = 2  # the exit status of every user error, the app's and Hydra's alike
_started = False  # whether a job reached the task function


@hydra.main(config_path=config_dir(), config_name="train", **HYDRA_MAIN)
def _main(cfg: DictConfig) -> Any:
    global _started
    _started = True
    from hlt_core.run import run_or_exit  # torch and Lightning load only for real work

    return run_or_exit(cfg)


def main() -> Any:
    """Hydra's app, with its config errors (an unknown key or option, a bad value: Hydra
    exits 1 before any job starts) given the app's user-error status."""
    try:
        return _main()
    except SystemExit as stop:
        if stop.code == 1 and not _started:
            raise SystemExit(USER_ERROR) from None
        raise
