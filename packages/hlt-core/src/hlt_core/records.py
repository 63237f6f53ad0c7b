"""What identifies a run: written into results.json next to the final metrics."""

from __future__ import annotations

import json
import math
import platform
import subprocess
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any

from hlt_core.discovery import GROUP

FRAMEWORKS = ("hlt-core", "hlt-trainer", "torch", "lightning", "hydra-core")


def config_providers() -> list[str]:
    """Distributions that provide configs through ``hlt.configs`` (hlt's own packages and
    any plug-in), found by discovery rather than listed by hand."""
    names = {ep.dist.name for ep in entry_points(group=GROUP) if ep.dist is not None}
    return sorted(names)


def package_versions(names: Iterable[str] | None = None) -> dict[str, str | None]:
    """Versions of the frameworks and of every config provider (None if not installed)."""
    chosen = names if names is not None else dict.fromkeys([*config_providers(), *FRAMEWORKS])
    versions: dict[str, str | None] = {}
    for name in chosen:
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
