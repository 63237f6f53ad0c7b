"""Resumable sweeps: a job whose folder already holds its own finished run is not run again.

Re-running a ``-m`` command into the same ``hydra.sweep.dir`` then runs only the jobs that
failed or never finished (killed: no ``results.json``), with any sweeper and launcher,
and sweepers and the summary still see every job's result. A job folder holding another
job's results is refused: a different sweep lives there. Import-light (no torch).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from hlt_core.errors import UserError, exit_user_error

log = logging.getLogger(__name__)


def read_record(path: Path) -> dict[str, Any]:
    """A job's ``results.json`` as its writer writes it: a JSON object with no ``job`` key
    (the sweep summary's own column). Anything else is a ``UserError`` naming the file."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(record, dict):
        raise UserError(f"{path}: holds a JSON {type(record).__name__}, not an object")
    if "job" in record:
        raise UserError(f"{path}: holds a 'job' key, which no run's record has")
    return record


def finished_run(cfg: DictConfig) -> dict[str, Any] | None:
    """The ``results.json`` record of this very job (same overrides) when it already
    ended ``ok`` in its folder (the job is then skipped), else None; exits 2 with one line
    when the folder holds another job's results."""
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None
    results = Path(cfg.paths.output_dir) / "results.json"
    if not results.is_file():
        return None
    try:
        record = read_record(results)
    except UserError as error:
        exit_user_error(error)
    overrides = " ".join(hydra.overrides.task)
    # in any order: a sweeper may hand a job its overrides in another order on resume
    if sorted(str(record.get("overrides")).split(" ")) != sorted(overrides.split(" ")):
        exit_user_error(
            f"{results.parent} holds the results of another job "
            f"({record.get('overrides')!r}, this job: {overrides!r}): a different sweep "
            "lives in this hydra.sweep.dir; choose another"
        )
    if record.get("status") != "ok":
        return None
    metric = cfg.get("optimized_metric")
    if metric and not isinstance(record.get(metric), int | float):
        exit_user_error(f"{results}: status ok but no number for {metric}")
    log.info(f"job {hydra.job.num} already done in {results.parent}: skipped (sweep resumed)")
    return record
