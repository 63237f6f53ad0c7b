"""After a multirun: one table of every job (failed ones included) and a comparison PNG.

A Hydra callback (``hydra.callbacks`` in the project's ``hydra/default.yaml``) so it
works with any sweeper and launcher: it only reads each job's ``results.json``.
Imports no torch.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from rich.text import Text

from hlt_core.errors import exit_user_error
from hlt_core.plots import best_job, compare_runs

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
        if results.is_file():
            row.update(json.loads(results.read_text()))
            row.setdefault("status", "ok")
        else:
            row["status"] = "failed"
            row["error"] = "no results.json (the job died)"
        rows.append(row)
    return sorted(
        rows,
        key=lambda r: (not r["job"].isdigit(), int(r["job"]) if r["job"].isdigit() else r["job"]),
    )


def summarize(sweep_dir: Path, metric: str) -> list[dict[str, Any]]:
    """Print the table, write ``summary.csv`` and ``comparison.png`` into the sweep folder."""
    rows = collect(sweep_dir)
    best = best_job(rows, metric)
    for row in rows:
        row["best"] = "★" if row["job"] == best else ""
    columns = [
        "job",
        "best",
        "status",
        "overrides",
        metric,
        *(m for m in SHOWN_METRICS if m != metric),
    ]
    table = Table(title=f"sweep {sweep_dir}")
    for column in columns:
        table.add_column(column)
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            if column == "status" and value == "failed":
                value = f"failed: {row.get('error', '')}"
            # Text, not markup: an error message may hold "[...]"
            cells.append(Text(f"{value:.4f}" if isinstance(value, float) else str(value)))
        table.add_row(*cells)
    Console().print(table)
    with (sweep_dir / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*columns, "error"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    compare_runs(rows, metric, sweep_dir / "comparison.png")
    return rows


class SweepSummary(Callback):
    """Hydra callback: ``summarize`` the sweep folder when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        metric = config.get("optimized_metric") or "val/loss"
        rows = summarize(sweep_dir, metric)
        failed = [str(row["job"]) for row in rows if row["status"] == "failed"]
        if failed:
            # the other jobs ran to the end; the sweep as a whole did not succeed
            print(
                f"error: {len(failed)} of {len(rows)} jobs failed (jobs {', '.join(failed)}); "
                f"see {sweep_dir / 'summary.csv'}",
                file=sys.stderr,
            )
            raise SystemExit(FAILED_JOBS)
