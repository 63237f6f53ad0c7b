"""The Hydra entry point. Config-only commands (--help, --cfg, --info) import no torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from hlt_core.schemas import register_schemas

CONFIG_DIR = os.environ.get("HLT_CONFIG_DIR", str(Path(__file__).resolve().parents[4] / "configs"))

register_schemas()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> Any:
    from hlt_core.run import run_or_exit  # torch and Lightning load only for real work

    return run_or_exit(cfg)
