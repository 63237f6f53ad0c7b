"""One training run from a composed config: the body of the trainer app.

Instantiates data, model, task, callbacks, loggers and the Trainer from ``cfg``; fits,
always leaves ``checkpoints/last.ckpt``, tests the best checkpoint, and writes
``results.json`` (flat final metrics plus what identifies the run) into the run folder.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig, OmegaConf

from hlt_core.console import print_config_tree
from hlt_core.errors import UserError
from hlt_core.module import TaskModule
from hlt_core.performance import apply_performance_settings
from hlt_core.records import git_state, host, package_versions


def check_checkpoint_path(path: str | None) -> None:
    """Fail before any work if ``ckpt_path`` is missing or unreadable."""
    if path is None or path in ("last", "best", "hpc", "registry"):
        return
    file = Path(path)
    if not file.is_file():
        raise UserError(f"ckpt_path={path}: no such file")
    if not os.access(file, os.R_OK):
        raise UserError(f"ckpt_path={path}: file is not readable")


def instantiate_each(node: Any) -> list[Any]:
    """Instantiate every entry of a dict of configs (callbacks, loggers); skip nulls."""
    if not node:
        return []
    return [instantiate(conf) for conf in node.values() if conf is not None]


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in metrics.items()
        if not isinstance(value, torch.Tensor) or value.numel() == 1
    }


def run(cfg: DictConfig) -> dict[str, float]:
    """Train and/or test as ``cfg`` says; returns the final metrics."""
    started = datetime.now(timezone.utc)
    run_dir = Path(cfg.paths.output_dir)
    check_checkpoint_path(cfg.ckpt_path)
    if cfg.print_config:
        print_config_tree(cfg)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    module = TaskModule(
        model=instantiate(cfg.model),
        task=instantiate(cfg.task),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler, _convert_="all") if cfg.scheduler else None,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    module = apply_performance_settings(cfg, module)
    loggers = instantiate_each(cfg.logger)
    callbacks = instantiate_each(cfg.callbacks)
    if cfg.trainer.enable_progress_bar is False:  # else Lightning refuses the bar callback
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    metrics: dict[str, float] = {}
    best = None
    if cfg.train:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        metrics.update(scalar_metrics(trainer.callback_metrics))
        if trainer.checkpoint_callback is not None:
            last = run_dir / "checkpoints" / "last.ckpt"
            trainer.save_checkpoint(last)
            best = trainer.checkpoint_callback.best_model_path or str(last)
    if cfg.test:
        test_ckpt = best if cfg.train else cfg.ckpt_path
        trainer.test(module, datamodule=datamodule, ckpt_path=test_ckpt)
        metrics.update(scalar_metrics(trainer.callback_metrics))

    if trainer.is_global_zero:
        record = {
            **dict(sorted(metrics.items())),
            "name": cfg.name,
            "seed": cfg.seed,
            "run_dir": str(run_dir.resolve()),
            "overrides": " ".join(HydraConfig.get().overrides.task),
            "best_checkpoint": best,
            "global_step": trainer.global_step,
            "started_at": started.isoformat(),
            "finished_at": datetime.now(timezone.utc).isoformat(),
            "host": host(),
            **git_state(Path.cwd()),
            **{f"version/{name}": v for name, v in package_versions().items()},
        }
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    return metrics


def run_or_exit(cfg: DictConfig) -> dict[str, float]:
    """``run`` with user errors shown as one line on stderr and exit status 2.

    ``HYDRA_FULL_ERROR=1`` re-raises them with the full traceback instead.
    """
    try:
        return run(cfg)
    except (UserError, InstantiationException, MisconfigurationException) as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        message = str(error).strip().splitlines()
        print(f"error: {' '.join(line.strip() for line in message)}", file=sys.stderr)
        raise SystemExit(2) from None
