"""Where the project lives: the folder holding ``configs/train.yaml``."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout this app is installed from (editable install), found by walking up
    from this file; else the current folder (an installed wheel run inside a project)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "configs" / "train.yaml").is_file():
            return parent
    return Path.cwd()


def config_dir() -> str:
    """``HLT_CONFIG_DIR`` if set, else the project's ``configs/``."""
    return os.environ.get("HLT_CONFIG_DIR") or str(project_root() / "configs")
