"""After a multirun: one table of every job (failed ones included) and a comparison PNG.

A Hydra callback (``hydra.callbacks`` in the project's ``hydra/default.yaml``) so it
works with any sweeper and launcher: it only reads each job's ``results.json``.
Imports no torch.
"""

from __future__ import annotations

import csv
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from hlt_core.errors import UserError, exit_user_error
from hlt_core.jobs.sweep_resume import read_record
from hlt_core.results.plots import best_job, compare_runs

log = logging.getLogger(__name__)
FAILED_JOBS = 3  # the exit status of a sweep that finished with failed jobs
SHOWN_METRICS = ("val/loss", "test/loss", "test/acc")


def check_search_mode() -> None:
    """A config that gives the sweeper a search space (``hparams_search=...``) is a sweep;
    run without ``-m``, Hydra would train one run on the defaults and say nothing. Exits 2
    with one line instead."""
    hydra = HydraConfig.get()
    if hydra.mode == RunMode.RUN and hydra.sweeper.get("params"):
        exit_user_error(
            "this config searches hydra.sweeper.params (an hparams_search): run it as a "
            "sweep, with -m"
        )


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job folder (those holding ``.hydra``), in job order."""
    rows = []
    for job_dir in sweep_dir.iterdir():
        if not (job_dir / ".hydra").is_dir():
            continue
        results = job_dir / "results.json"
        row: dict[str, Any] = {"job": job_dir.name}
        overrides = job_dir / ".hydra" / "overrides.yaml"
        if overrides.is_file():  # results.json says it too, when the job wrote one
            row["overrides"] = " ".join(OmegaConf.load(overrides))
        if results.is_file():
            try:
                row.update(read_record(results))
            except UserError as error:
                row.update(status="failed", error=str(error))
            row.setdefault("status", "ok")
        else:
            row["status"] = "failed"
            row["error"] = "no results.json (the job died)"
        rows.append(row)
    return sorted(
        rows,
        key=lambda r: (not r["job"].isdigit(), int(r["job"]) if r["job"].isdigit() else r["job"]),
    )


def job_overrides(row: dict[str, Any]) -> dict[str, str]:
    """A job's command-line overrides as ``{key: value}``, read from its ``command`` (quoted,
    so a value may hold spaces), else from ``overrides``; empty for a job that left none."""
    command = row.get("command")
    words = shlex.split(command)[3:] if isinstance(command, str) else []
    if not words and isinstance(row.get("overrides"), str):
        words = row["overrides"].split()
    pairs = (word.partition("=") for word in words)
    return {key: value for key, sep, value in pairs if sep}


def swept(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """The override keys whose value differs between jobs (in first-seen order), and the
    overrides every job shares, so that a table shows each fact once."""
    per_job = [job_overrides(row) for row in rows if row.get("command") or row.get("overrides")]
    keys = list(dict.fromkeys(key for job in per_job for key in job))
    varying = [key for key in keys if len({job.get(key) for job in per_job}) > 1]
    fixed = {key: per_job[0][key] for key in keys if key not in varying}
    return varying, fixed


def job_label(row: dict[str, Any], varying: list[str]) -> str:
    """``<job>: key=value ...`` of the swept values, naming a job in a picture."""
    values = job_overrides(row)
    return " ".join([f"{row['job']}:", *(f"{k}={values[k]}" for k in varying if k in values)])


def print_table(rows: list[dict[str, Any]], metrics: list[str], title: str) -> None:
    """The sweep table, every value in full: on a terminal, a cell too wide for the screen
    folds onto more lines; elsewhere (a pipe, a log file) the table takes the width it needs."""
    # rich only here: the app imports this module for `check_search_mode` on every start,
    # `--help` and `--cfg job` included
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    varying, fixed = swept(rows)
    table = Table(title=title)
    shown = ["job", "best", *varying, *metrics, "status"]
    for column in shown:
        table.add_column(column, overflow="fold")
    for row in rows:
        values = {**row, **job_overrides(row)}
        if row.get("status") == "failed":
            values["status"] = f"failed: {row.get('error', '')}"
        # Text, not markup: an error message or a value may hold "[...]"
        table.add_row(*(Text(_cell(values.get(column, ""))) for column in shown))
    console = Console()
    if not console.is_terminal:
        wide = console.options.update_width(10_000)
        console = Console(width=console.measure(table, options=wide).maximum)
    if fixed:
        same = " ".join(f"{key}={value}" for key, value in fixed.items())
        console.print(f"every job: {same}", markup=False, highlight=False, soft_wrap=True)
    console.print(table)


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metric_direction(config: DictConfig, metric: str) -> str | None:
    """``min`` or ``max`` for ``metric`` as the config states it: the sweeper's
    ``direction`` (Optuna's ``minimize``/``maximize``), else the checkpoint callback's
    ``mode`` for the metric it monitors (and its ``<monitor>_best``); None if neither says."""
    direction = OmegaConf.select(config, "hydra.sweeper.direction")
    if isinstance(direction, str):
        return {"minimize": "min", "maximize": "max"}.get(direction)
    monitor = OmegaConf.select(config, "callbacks.model_checkpoint.monitor")
    if monitor and metric in (monitor, f"{monitor}_best"):
        return OmegaConf.select(config, "callbacks.model_checkpoint.mode")
    return None


def sweep_recipe(config: DictConfig) -> tuple[list[str], set[str]]:
    """The sweep command's fixed overrides and its swept keys (the sweeper's ``params``,
    then the command line, which wins)."""
    params = config.hydra.sweeper.get("params") or {}
    given = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = {o.get_key_element(): o for o in OverridesParser.create().parse_overrides(given)}
    keys = {key.lstrip("+~") for key, o in parsed.items() if o.is_sweep_override()}
    return [o.input_line or "" for o in parsed.values() if not o.is_sweep_override()], keys


def mark_recipes(rows: list[dict[str, Any]], fixed: list[str], keys: set[str]) -> None:
    """``recipe``: ``same`` for a job run with exactly the command's fixed overrides (its
    overrides but the swept ``keys``),
    ``other`` for one left in the folder by another command; only ``same`` jobs are
    compared (starred as best)."""
    recipe = as_values(fixed)
    for row in rows:
        overrides = str(row.get("overrides") or "").split(" ")
        own = [o for o in overrides if o and o.split("=", 1)[0].lstrip("+~") not in keys]
        row["recipe"] = "same" if as_values(own) == recipe else "other"


def as_values(overrides: list[str]) -> list[tuple[str, str]]:
    """Overrides as sorted (key, value) pairs, so that the command's ``x=false`` and the
    job's ``x=False`` (Hydra's sweeper writes values back in its own spelling) agree."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return sorted((o.get_key_element(), repr(o.value())) for o in parsed)


def summarize(
    sweep_dir: Path,
    metric: str,
    direction: str | None,
    recipe: tuple[list[str], set[str]] | None = None,
) -> list[dict[str, Any]]:
    """Print the table, write ``summary.csv`` and ``comparison.png`` into the sweep folder;
    the best job (by ``direction``) is starred, and with the sweep's ``recipe`` only among
    the jobs run with its own fixed overrides."""
    rows = collect(sweep_dir)
    if recipe is not None:
        mark_recipes(rows, *recipe)
    best = best_job(rows, metric, direction)
    for row in rows:
        row["best"] = "★" if row["job"] == best else ""
    metrics = [metric, *(m for m in SHOWN_METRICS if m != metric)]
    print_table(rows, metrics, f"sweep {sweep_dir}")
    with (sweep_dir / "summary.csv").open("w", newline="") as handle:
        fields = ["job", "best", "status", "overrides", *metrics, "error", "recipe"]
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    varying, _ = swept(rows)
    labels = [job_label(row, varying) for row in rows]
    compare_runs(rows, metric, sweep_dir / "comparison.png", labels, direction)
    return rows


class SweepSummary(Callback):
    """Hydra callback: ``summarize`` the sweep folder when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        metric = config.get("optimized_metric") or "val/loss"
        direction = metric_direction(config, metric)
        rows = summarize(sweep_dir, metric, direction, sweep_recipe(config))
        failed = [str(row["job"]) for row in rows if row["status"] == "failed"]
        if failed:
            # the other jobs ran to the end; the sweep as a whole did not succeed
            print(
                f"error: {len(failed)} of {len(rows)} jobs failed (jobs {', '.join(failed)}); "
                f"see {sweep_dir / 'summary.csv'}",
                file=sys.stderr,
            )
            raise SystemExit(FAILED_JOBS)
