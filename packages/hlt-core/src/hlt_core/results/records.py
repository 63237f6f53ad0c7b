"""What identifies a run, written into results.json next to the final metrics
(``run_record``, ``write_results``)."""

from __future__ import annotations

import json
import math
import platform
import shlex
import subprocess
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from hlt_core.discovery import GROUP
from hlt_core.storing.atomic import write_text_atomic

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


def resume_record(cfg: DictConfig) -> dict[str, Any]:
    """What results.json says of a resume: the folder it continued and what changed."""
    if not cfg.get("resume"):
        return {}
    return {"resumed": cfg.resume, "resume_changes": " ".join(cfg.get("resume_changes") or [])}


def run_record(cfg: DictConfig, started: datetime, **fields: Any) -> dict[str, Any]:
    """What identifies a run, written next to its metrics in results.json."""
    try:
        task_overrides = list(HydraConfig.get().overrides.task)
    except ValueError:  # HydraConfig not set (run() called outside the app)
        task_overrides = []
    overrides = " ".join(task_overrides)
    return {
        "name": cfg.name,
        "seed": cfg.seed,
        "tags": ", ".join(map(str, cfg.get("tags") or [])),
        "run_dir": str(Path(cfg.paths.output_dir).resolve()),
        "overrides": overrides,
        "command": shlex.join(["uv", "run", "apps/trainer", *task_overrides]),
        **resume_record(cfg),
        **fields,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "host": host(),
        **git_state(Path.cwd()),
        **{f"version/{name}": v for name, v in package_versions().items()},
    }


def label_names(dims: Mapping[str, Any]) -> dict[str, str]:
    """The class names, in class order, as one value of the flat record (the exact list
    is in the checkpoint's data facts)."""
    return {"labels": ", ".join(map(str, dims["labels"]))} if "labels" in dims else {}


def write_results(run_dir: Path, record: Mapping[str, Any]) -> None:
    write_text_atomic(run_dir / "results.json", results_json(record))
