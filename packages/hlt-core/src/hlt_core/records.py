"""What identifies a run: written into results.json next to the final metrics."""

from __future__ import annotations

import json
import math
import platform
import subprocess
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = (
    "hlt-core",
    "hlt-data",
    "hlt-models",
    "hlt-tasks",
    "hlt-trainer",
    "torch",
    "lightning",
    "hydra-core",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(cwd: Path) -> dict[str, Any]:
    """Commit and dirty flag of the repository holding ``cwd`` (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if commit is None else bool(status)}


def host() -> str:
    return platform.node()


def results_json(record: Mapping[str, Any]) -> str:
    """``record`` as strict JSON. NaN and Inf are not JSON (``json.dumps`` writes bare
    ``NaN``, which most readers refuse): such values are written as null and listed,
    with what they were, under ``nonfinite``, e.g. ``{"val/loss": "nan"}``."""
    nonfinite = {
        key: str(value)
        for key, value in record.items()
        if isinstance(value, float) and not math.isfinite(value)
    }
    clean = {key: None if key in nonfinite else value for key, value in record.items()}
    if nonfinite:
        clean["nonfinite"] = nonfinite
    return json.dumps(clean, indent=2, allow_nan=False) + "\n"
