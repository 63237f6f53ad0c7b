"""One training run from a composed config: the body of the trainer app.

Instantiates data, model, task, callbacks, loggers and the Trainer from ``cfg``; fits
(resuming from ``ckpt_path``), always leaves ``checkpoints/last.ckpt``, tests the best
checkpoint, optionally predicts, and writes ``results.json`` (flat final metrics plus
what identifies the run) and a learning-curve PNG into the run folder.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import shlex
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from hlt_core.atomic import (
    remove_partial_files,
    trainer_plugins,
    write_text_atomic,
)
from hlt_core.callbacks import InterruptCheckpoint, last_checkpoint, run_callbacks
from hlt_core.checkpoints import (
    check_checkpoint_dir,
    check_checkpoint_path,
    check_compatible,
    check_resumable,
    checkpoint_position,
    holds_weights_only,
    load_checkpoint,
)
from hlt_core.console import print_config_tree, report_end, route_lightning_logging
from hlt_core.data_facts import build_datamodule, check_filled, fill_dims
from hlt_core.ddp_jobs import announce_job, launch_environment, leave_job
from hlt_core.errors import UserError
from hlt_core.export import export_model
from hlt_core.hydra_compat import instantiate
from hlt_core.init_from import init_from, split_model_config
from hlt_core.loggers import check_logger_packages, close_loggers
from hlt_core.module import TaskModule, check_model_fits_data
from hlt_core.performance import apply_performance_settings
from hlt_core.plots import learning_curve
from hlt_core.predictions import prediction_table
from hlt_core.predictor import Predictor, check_onnx, example_inputs
from hlt_core.records import git_state, host, package_versions, results_json

__all__ = ["Interrupted", "check_checkpoint_path", "run", "run_or_exit"]
log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Training stopped by SIGTERM/SIGINT after saving a checkpoint; not a failure."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
        **fields,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "host": host(),
        **git_state(Path.cwd()),
        **{f"version/{name}": v for name, v in package_versions().items()},
    }


def label_names(dims: Mapping[str, Any]) -> dict[str, str]:
    """The class names, in class order, as one value of the flat record (the exact list
    is in the checkpoint's ``hlt_data``)."""
    return {"labels": ", ".join(map(str, dims["labels"]))} if "labels" in dims else {}


def write_results(run_dir: Path, record: Mapping[str, Any]) -> None:
    write_text_atomic(run_dir / "results.json", results_json(record))


def summary_example(datamodule: Any) -> torch.Tensor | None:
    """One example of the training inputs, read straight from an hlt datamodule's first
    batch (no loader, no workers), so that the model summary shows real sizes and FLOPs."""
    dataset = getattr(datamodule, "dataset", None)
    if not callable(dataset):
        return None
    return dataset("train")[(0, 0)]["inputs"][:1]


def check_optimizer(module: TaskModule) -> None:
    """Build the configured optimizer on a throwaway parameter, so that a bad setting
    (a negative lr, betas out of range) fails before training, in one line."""
    try:
        module.optimizer_factory([torch.nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as error:
        raise UserError(f"optimizer: {_one_line(error)}") from None


@contextmanager
def job_resources(loggers: list[Any], run_dir: Path) -> Iterator[None]:
    """What a job holds beyond its folder, released when it ends however it ends: its
    logger runs and its distributed processes, so that the next job of a multirun in
    this process starts afresh (``hlt_core.ddp_jobs``)."""
    environment = launch_environment()
    announce_job(run_dir, _in_multirun())
    status = "failed"
    try:
        yield
        status = "success"
    finally:
        close_loggers(loggers, status)
        leave_job(environment)


def check_launcher(trainer: L.Trainer, strategy: Any) -> None:
    """Refuse strategies that start their processes with multiprocessing (``ddp_spawn``,
    ``ddp_fork``, ``ddp_notebook``): what the run learns (its step count, its logs, the
    checkpoint callback's best) stays in those processes, so results.json would lie."""
    if isinstance(trainer.strategy.launcher, _MultiProcessingLauncher):
        raise UserError(
            f"trainer.strategy={strategy} keeps the run's state in spawned processes; "
            "use trainer.strategy=ddp (on CPU too: trainer.accelerator=cpu trainer.devices=2)"
        )


def fit(
    trainer: L.Trainer,
    module: TaskModule,
    datamodule: Any,
    ckpt_path: str | None,
    interrupt: InterruptCheckpoint,
    last: Path,
) -> None:
    """``trainer.fit`` with SIGTERM/SIGINT turned into ``Interrupted`` once saved."""
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except (SIGTERMException, SystemExit) as error:
        if interrupt.saved_on is None:
            raise
        code = 143 if interrupt.saved_on == "SIGTERM" else 130  # 128 + signal number
        raise Interrupted(
            f"{interrupt.saved_on} at step {trainer.global_step}: saved {last}; "
            f"resume with ckpt_path={last}",
            code,
        ) from error


def build_predictor(model_config: Mapping[str, Any], module: TaskModule) -> Predictor:
    """A fresh, uncompiled copy of the run's model and decoder with the task's output
    transform and the data's feature statistics (the export loads the weights)."""
    state = module.data_state or {}
    return Predictor(
        instantiate(model_config),
        module.task.build_decoder(module.feature_width),
        module.task.output_transform(),
        state.get("feature_mean"),
        state.get("feature_std"),
    )


def predictions_path(cfg: DictConfig, evaluated: str | None, run_dir: Path) -> Path:
    """``predictions`` if named, else predictions.csv in the run folder of the evaluated
    checkpoint (``<run>/checkpoints/<name>.ckpt``), else in this run's folder."""
    if cfg.predictions:
        return Path(cfg.predictions)
    ckpt = Path(evaluated) if evaluated else None
    if ckpt is not None and ckpt.is_file() and ckpt.parent.name == "checkpoints":
        return ckpt.parent.parent / "predictions.csv"
    return run_dir / "predictions.csv"


def predict(trainer: L.Trainer, module: TaskModule, datamodule: Any, ckpt: Any, out: Path) -> Path:
    """The predictions table of the predict split (the test split), ids from the data."""
    batches = trainer.predict(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
    if trainer.is_global_zero:
        outputs = torch.cat([torch.as_tensor(b) for b in batches or []])
        row_ids = getattr(datamodule, "row_ids", None)
        ids = row_ids("test") if row_ids else [("", str(i)) for i in range(len(outputs))]
        if len(ids) != len(outputs):  # each process predicts its share of the split
            raise UserError(
                f"predict=true got {len(outputs)} of {len(ids)} rows on this process; "
                "predict with one process (trainer.devices=1)"
            )
        state = module.data_state or {}
        kind = getattr(module.task, "output_kind", "values")
        with prediction_table(out, kind, state.get("labels", [])) as table:
            table.write(ids, outputs)
        print(f"predictions: {out}")
    return out


def run(cfg: DictConfig) -> dict[str, float]:
    """Train, test and/or predict as ``cfg`` says; returns the final metrics."""
    started = datetime.now(timezone.utc)
    route_lightning_logging()
    run_dir = Path(cfg.paths.output_dir)
    checkpoint_dir = Path(cfg.paths.checkpoint_dir)
    last = last_checkpoint(checkpoint_dir)
    check_checkpoint_path(cfg.ckpt_path)
    remove_partial_files(run_dir)  # left by a killed run in this folder
    if not cfg.train and (cfg.test or cfg.predict) and not cfg.ckpt_path:
        raise UserError("train=false needs ckpt_path=<checkpoint> to evaluate or predict")
    check_logger_packages(cfg.logger)
    if cfg.export_onnx:
        check_onnx()
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg.data)
    fill_dims(cfg, datamodule)
    check_filled(cfg)
    if cfg.print_config:
        print_config_tree(cfg)
    plain_config = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))  # dims filled
    model_config, source = split_model_config(cfg.model)
    model = instantiate(model_config)
    check_model_fits_data(model, cfg.data.dims)
    if source:
        log.info(init_from(model, source, model_config))
    module = TaskModule(
        model=model,
        task=instantiate(cfg.task),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler, _convert_="all") if cfg.scheduler else None,
        config=plain_config,
        train_metrics_every_n_steps=cfg.train_metrics_every_n_steps,
        data_state=getattr(datamodule, "preprocessing", None),
    )
    module.example_input_array = summary_example(datamodule)
    saved = None  # the checkpoint of ckpt_path, loaded (memory-mapped) once for every check
    if cfg.ckpt_path and Path(cfg.ckpt_path).is_file():
        saved = load_checkpoint(cfg.ckpt_path)
        check_compatible(cfg.ckpt_path, saved, module)
        if cfg.train:
            check_resumable(cfg.ckpt_path, saved, cast(dict[str, Any], module.run_config))
    check_optimizer(module)
    apply_performance_settings(cfg, module)
    loggers = instantiate_each(cfg.logger)
    with job_resources(loggers, run_dir):
        callbacks = instantiate_each(cfg.callbacks)
        check_checkpoint_dir(callbacks, checkpoint_dir)
        if cfg.trainer.enable_progress_bar is False:  # else Lightning refuses the bar callback
            callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
        always = run_callbacks(checkpoint_dir)
        callbacks.append(always)
        plugins = trainer_plugins(cfg.trainer.plugins)
        trainer: L.Trainer = instantiate(
            cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins
        )
        check_launcher(trainer, cfg.trainer.strategy)
        for logger in loggers:
            logger.log_hyperparams(plain_config)

        metrics: dict[str, float] = {}
        best = None
        extra: dict[str, Any] = {}
        if cfg.train:
            fit(trainer, module, datamodule, cfg.ckpt_path, always.interrupt, last)
            # train/* describe the last training epoch; val/* and test/* come from the
            # evaluated checkpoint below
            metrics.update(
                (k, v)
                for k, v in scalar_metrics(trainer.callback_metrics).items()
                if k.startswith("train/")
            )
            metrics.update(always.best.summary)
            checkpointing = trainer.checkpoint_callback
            if isinstance(checkpointing, ModelCheckpoint):
                if not always.at_max_steps.saved:  # that one holds the resumable mid-epoch state
                    trainer.save_checkpoint(last, weights_only=False)
                best = checkpointing.best_model_path or str(last)
                extra.update(checkpoint_position(best))
                data_facts = {
                    "dims": plain_config["data"]["dims"],
                    **(module.data_state or {}),
                }
                export_model(
                    best,
                    model_config,
                    module.feature_width,
                    run_dir / "export",
                    data_facts,
                    predictor=build_predictor(model_config, module),
                    example=example_inputs(next(iter(datamodule.predict_dataloader()))),
                    output_kind=getattr(module.task, "output_kind", "values"),
                    onnx=cfg.export_onnx,
                )
        evaluated = best if cfg.train else cfg.ckpt_path
        restore = evaluated  # what Lightning loads before evaluating
        if not cfg.train and saved is not None and holds_weights_only(saved):
            # Lightning restores only its own checkpoints: load bare weights ourselves
            module.load_state_dict(saved["state_dict"])
            restore = None
        if cfg.train:
            # val/* of the evaluated checkpoint, not of the last epoch: results.json then
            # tells one story, and sweepers optimise the value of the model that is kept
            trainer.validate(
                module, datamodule=datamodule, ckpt_path=restore, weights_only=True, verbose=False
            )
            metrics.update(scalar_metrics(trainer.callback_metrics))
        if cfg.test:
            trainer.test(module, datamodule=datamodule, ckpt_path=restore, weights_only=True)
            metrics.update(scalar_metrics(trainer.callback_metrics))
        if cfg.predict:
            extra["predictions"] = str(
                predict(
                    trainer, module, datamodule, restore, predictions_path(cfg, evaluated, run_dir)
                )
            )

        if trainer.is_global_zero:
            record = run_record(
                cfg,
                started,
                status="ok",
                evaluated_checkpoint=evaluated,
                best_checkpoint=best,
                global_step=trainer.global_step,
                **always.throughput.summary,
                **extra,
                **label_names(cfg.data.dims),
            )
            write_results(run_dir, {**dict(sorted(metrics.items())), **record})
            if cfg.train:
                learning_curve(always.history.rows, run_dir / "learning_curve.png")
            outputs = {
                "best checkpoint": best,
                "last checkpoint": last if last.is_file() else None,
                "export": run_dir / "export" if (run_dir / "export").is_dir() else None,
                "predictions": extra.get("predictions"),
                "results": run_dir / "results.json",
            }
            report_end(log, {**metrics, **record}, outputs)
    return metrics


def objective(cfg: DictConfig, metrics: Mapping[str, float]) -> Any:
    """What the task function returns: ``optimized_metric``'s value (for sweepers)."""
    name = cfg.get("optimized_metric")
    if not name:
        return dict(metrics)
    if name not in metrics:
        raise UserError(f"optimized_metric={name} was not logged; logged: {', '.join(metrics)}")
    return metrics[name]


def _one_line(error: BaseException) -> str:
    """The error's message on one line; for a failed instantiation, the component's own
    message (a bad data path, a bad value) rather than Hydra's wrapper around it."""
    if isinstance(error, InstantiationException) and isinstance(error.__cause__, ValueError):
        error = error.__cause__
    lines = str(error).strip().splitlines()
    return " ".join(line.strip() for line in lines) or type(error).__name__


def resource_error(error: BaseException) -> str | None:
    """A full disk or exhausted memory, said as such (with what to do), or None."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        where = f" writing {error.filename}" if error.filename else ""
        return f"disk full{where}: free space, then resume from the last checkpoint"
    if isinstance(error, MemoryError | torch.OutOfMemoryError):
        first = _one_line(error)[:200]
        return f"out of memory ({first}); lower data.batch_size or the model's size"
    return None


def _in_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def run_or_exit(cfg: DictConfig) -> Any:
    """``run`` with user errors shown as one line on stderr and exit status 2.

    In a multirun a failing job is recorded (``results.json`` with ``status: failed``)
    and returns NaN instead of stopping the sweep. ``HYDRA_FULL_ERROR=1`` re-raises
    errors with the full traceback instead.
    """
    started = datetime.now(timezone.utc)
    try:
        return objective(cfg, run(cfg))
    except Interrupted as stop:
        print(f"stopped: {stop}", file=sys.stderr)
        raise SystemExit(stop.exit_code) from None
    except Exception as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        user = isinstance(error, UserError | InstantiationException | MisconfigurationException)
        resource = resource_error(error)
        if resource is not None:
            user, error = True, UserError(resource)
        if _in_multirun():
            log.exception("job failed")
            record = run_record(cfg, started, status="failed", error=_one_line(error))
            write_results(Path(cfg.paths.output_dir), record)
            return math.nan
        if not user:
            raise
        record_failure(cfg, started, _one_line(error))
        print(f"error: {_one_line(error)}", file=sys.stderr)
        raise SystemExit(2) from None


def record_failure(cfg: DictConfig, started: datetime, message: str) -> None:
    """A failed run says so in the folder it leaves: ``results.json`` with ``status:
    failed`` and the error (never over an earlier run's results), and the error line in
    app.log (the console shows it once, on stderr)."""
    run_dir = Path(cfg.paths.output_dir)
    if run_dir.is_dir() and not (run_dir / "results.json").exists():
        write_results(run_dir, run_record(cfg, started, status="failed", error=message))
    entry = log.makeRecord(log.name, logging.ERROR, __file__, 0, f"error: {message}", (), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(entry)
