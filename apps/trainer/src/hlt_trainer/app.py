"""The Hydra entry point. Config-only commands (--help, --cfg, --info) import no torch."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from hlt_core.schemas import register_schemas
from hlt_trainer.paths import config_dir

register_schemas()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> Any:
    from hlt_core.run import run_or_exit  # torch and Lightning load only for real work

    return run_or_exit(cfg)
