"""Optional loggers: each needs a package that hlt-core installs only as an extra.

Checked before anything is built so that ``logger=mlflow`` without MLflow says what to
install, not a traceback from Lightning; closed at the end of every job, failed or not,
so that each job of a multirun gets a run of its own.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from lightning.pytorch import loggers as lightning_loggers

from hlt_core.errors import UserError

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
