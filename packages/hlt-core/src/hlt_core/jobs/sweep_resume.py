"""Resumable sweeps: a job whose folder already holds its own finished run is not run again.

Re-running a ``-m`` command into the same ``hydra.sweep.dir`` then runs only the jobs that
failed or never finished (killed: no ``results.json``), with any sweeper and launcher,
and sweepers and the summary still see every job's result. A job folder holding another
job's results is refused: a different sweep lives there. Import-light (no torch).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from hlt_core.errors import UserError, exit_user_error, read_json_object

log = logging.getLogger(__name__)


def read_record(path: Path) -> dict[str, Any]:
    """A job's ``results.json`` as its writer writes it: a JSON object with no ``job`` key
    (the sweep summary's own column). Anything else is a ``UserError`` naming the file."""
    record = read_json_object(path)
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


def check_stored_job(recorded: Any, planned: list[str], where: str) -> None:
    """A job read back from a sweep's store (say an Optuna study) is data: it must be
    exactly the job this sweep plans for it (the same overrides, in any order), which the
    sweeper rebuilt from its own command and search space. Anything else, such as a
    ``_target_`` or a ``+key`` the command never gave, is refused in one line naming
    ``where`` (the trial), and nothing of the stored job runs."""
    if not isinstance(recorded, list) or not all(isinstance(o, str) for o in recorded):
        exit_user_error(f"{where}: its stored job is not a list of overrides ({recorded!r:.200})")
    same = "resume with the command that started the sweep"
    for override in sorted(set(recorded) - set(planned)):
        if "_target_" in override or override.startswith(("+", "~")):
            exit_user_error(
                f"{where}: its stored job holds {override!r}, which this command does not "
                "give: refused, nothing of it runs"
            )
        exit_user_error(
            f"{where}: its stored job holds {override!r}, which this command does not; {same}"
        )
    missing = sorted(set(planned) - set(recorded))
    if missing or len(recorded) != len(planned):
        shown = missing[0] if missing else " ".join(planned)
        exit_user_error(f"{where}: its stored job lacks {shown!r}, which this command sets; {same}")
