"""Optional loggers: each needs a package that hlt-core installs only as an extra.

Checked before anything is built so that ``logger=mlflow`` without MLflow says what to
install, not a traceback from Lightning; closed at the end of every job, failed or not,
so that each job of a multirun gets a run of its own.
"""

from __future__ import annotations

import csv
import importlib
import io
import sys
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch import loggers as lightning_loggers
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from hlt_core.errors import UserError
from hlt_core.storing.atomic import atomic_file

# Lightning logger class -> (module it needs, hlt-core extra that installs it)
REQUIREMENTS = {
    "TensorBoardLogger": ("tensorboard", "tensorboard"),
    "MLFlowLogger": ("mlflow", "mlflow"),
    "WandbLogger": ("wandb", "wandb"),
}


class WandbLogger(lightning_loggers.WandbLogger):
    """Lightning's W&B logger without the console lines no user can act on: the
    ``anonymous`` setting Lightning passes even when unset (W&B warns on every run that
    it has no effect), and, unless ``settings`` is given, what W&B prints for each run
    on stderr (its header, history panel and sync hint: every job of a sweep printed
    them). The run's closing block names the upload command once
    (``upload_commands``); W&B's library warnings (``wandb.termwarn``) still show."""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("settings") is None:
            import wandb

            kwargs["settings"] = wandb.Settings(silent=True)
        super().__init__(**kwargs)
        if kwargs.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)


class ResumedRows(ExperimentWriter):
    """Lightning's CSV writer, except that it keeps the ``metrics.csv`` a run finds in its
    folder: Lightning deletes it (with a warning), so a resumed run lost every row of its
    epochs before the checkpoint. The rows logged before the first step it logs again
    are kept; the later ones (past the checkpoint) are logged again."""

    def _check_log_dir_exists(self) -> None:
        self._found = self._fs.isfile(self.metrics_file_path)

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        if self._found and step is not None:
            self._found = False
            self._keep_rows_before(step)
        super().log_metrics(metrics_dict, step)

    def _keep_rows_before(self, step: int) -> None:
        with open(self.metrics_file_path, newline="") as file:
            reader = csv.DictReader(file)
            rows = [row for row in reader if row.get("step") and float(row["step"]) < step]
            self.metrics_keys = sorted(reader.fieldnames or [])
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        with atomic_file(self.metrics_file_path) as file:
            file.write(text.getvalue().encode())


class CSVLogger(lightning_loggers.CSVLogger):
    """Lightning's CSV logger whose ``metrics.csv`` goes on where a resumed run left it
    (``ResumedRows``), and is written when the run saves its loggers (every few seconds
    within an epoch, ``hlt_core.training.module.SAVE_LOGS_SECONDS``, and at each epoch's
    end), not also every ``flush_logs_every_n_steps`` steps unless that is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("flush_logs_every_n_steps", sys.maxsize)
        super().__init__(*args, **kwargs)

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if not isinstance(self._experiment, ResumedRows):
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ResumedRows(log_dir=self.log_dir)
        return self._experiment


def upload_commands() -> dict[str, str]:
    """For the run's closing block: the command that uploads this process's offline W&B
    run, if it has one."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None)
    if run is None or not run.offline:
        return {}
    return {"upload W&B run": f"wandb sync {run.sync_dir}"}


def check_logger_packages(loggers: Any) -> None:
    """Fail naming the extra to install for any configured logger whose package is missing."""
    for name, conf in dict(loggers or {}).items():
        target = str((conf or {}).get("_target_", ""))
        needed = REQUIREMENTS.get(target.rsplit(".", 1)[-1])
        if needed is None:
            continue
        module, extra = needed
        try:
            importlib.import_module(module)
        except ImportError:
            raise UserError(
                f"logger {name} needs the package {module}: pip install 'hlt-core[{extra}]' "
                f"(in this workspace: uv sync --extra {extra} --package hlt-core, "
                f"or uv sync with the dev group)"
            ) from None


def close_loggers(loggers: list[Any], status: str) -> None:
    """End every logger's run for this job: ``finalize`` (MLflow marks the run FINISHED
    or FAILED, TensorBoard flushes and closes its writer), and finish the process-wide
    W&B run, which Lightning leaves open: the next job of a multirun in this process
    would otherwise log into it."""
    for logger in loggers:
        logger.finalize(status)
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=0 if status == "success" else 1)
