"""One training run from a composed config: the body of the trainer app.

``run`` reads as its own table of contents: ``prepare`` checks what can be checked before
any work, ``build`` makes the data, the module and the Trainer, ``fit`` trains and
exports the best checkpoint, ``evaluate`` validates, tests and predicts with the kept
checkpoint, and ``finish`` writes ``results.json`` (flat final metrics plus what
identifies the run) and the learning curve. Each stage takes what it reads and returns
what it made.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
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

from hlt_core.composing.data_facts import build_datamodule, check_data_made, check_filled, fill_dims
from hlt_core.composing.init_from import init_from, split_model_config
from hlt_core.composing.training_length import check_training_length
from hlt_core.contracts import INPUTS, DataModule
from hlt_core.errors import UserError, exit_user_error
from hlt_core.hydra_compat import instantiate
from hlt_core.jobs.ddp_jobs import announce_job, launch_environment, leave_job, process_rank
from hlt_core.jobs.resume import resume_command, sweep_job_checkpoint
from hlt_core.results.console import (
    print_config_tree,
    report_end,
    route_library_logging,
    route_lightning_logging,
)
from hlt_core.results.export import export_model
from hlt_core.results.plots import learning_curve
from hlt_core.results.predictions import in_split_order, prediction_table
from hlt_core.results.predictor import Predictor, check_onnx, example_inputs
from hlt_core.results.records import label_names, run_record, write_results
from hlt_core.storing.atomic import remove_partial_files, trainer_plugins
from hlt_core.storing.checkpoints import (
    check_checkpoint_dir,
    check_checkpoint_path,
    check_compatible,
    check_resumable,
    holds_weights_only,
    load_checkpoint,
)
from hlt_core.training.callbacks import (
    RunCallbacks,
    last_checkpoint,
    run_callbacks,
    skip_unused_batch_hooks,
)
from hlt_core.training.ensembles import build_decoder
from hlt_core.training.loggers import check_logger_packages, close_loggers, upload_commands
from hlt_core.training.module import NonFiniteLossError, TaskModule, check_model_fits_data
from hlt_core.training.performance import apply_performance_settings

__all__ = ["Interrupted", "check_checkpoint_path", "run", "run_or_exit"]
log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Training stopped by SIGTERM/SIGINT after saving a checkpoint; not a failure."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Built:
    """What ``build`` made: the data, the module and what they were made from."""

    data: DataModule
    module: TaskModule
    model_config: dict[str, Any]  # resolved, without init_from: what the export rebuilds
    plain_config: dict[str, Any]  # the resolved run config, data dims filled
    saved: Mapping[str, Any] | None  # the checkpoint of ckpt_path, loaded once

    @property
    def datamodule(self) -> L.LightningDataModule:
        """The same data, as Lightning's Trainer takes it."""
        return cast(L.LightningDataModule, self.data)


@dataclass
class Outcome:
    """What the run learnt, filled by ``fit`` and ``evaluate``, written by ``finish``."""

    metrics: dict[str, float] = field(default_factory=dict)
    best: str | None = None  # the checkpoint kept by training
    evaluated: str | None = None  # the checkpoint validated, tested and predicted
    extra: dict[str, Any] = field(default_factory=dict)  # more of the run's record


def run(cfg: DictConfig) -> dict[str, float]:
    """Train, test and/or predict as ``cfg`` says; returns the final metrics."""
    started = datetime.now(timezone.utc)
    sweep_job_checkpoint(cfg)  # a resumed sweep's job continues its own last.ckpt
    prepare(cfg)
    built = build(cfg)
    loggers = instantiate_each(cfg.logger)
    with job_resources(loggers, Path(cfg.paths.output_dir), cfg.name):
        trainer, always = build_trainer(cfg, loggers, built.plain_config)
        outcome = fit(cfg, trainer, built, always) if cfg.train else Outcome()
        evaluate(cfg, trainer, built, outcome)
        if trainer.is_global_zero:
            finish(cfg, started, trainer, always, outcome)
    return outcome.metrics


def prepare(cfg: DictConfig) -> None:
    """What can be refused before any work, and the seed."""
    route_lightning_logging()
    check_checkpoint_path(cfg.ckpt_path)
    check_training_length(cfg.train, cfg.trainer)
    if process_rank(os.environ) is None:  # other ranks share rank 0's folder
        remove_partial_files(cfg.paths.output_dir)  # left by a killed run in this folder
    if not cfg.train and (cfg.test or cfg.predict) and not cfg.ckpt_path:
        raise UserError("train=false needs ckpt_path=<checkpoint> to evaluate or predict")
    check_logger_packages(cfg.logger)
    route_library_logging("mlflow")  # imported by the check when a logger needs it
    check_data_made(cfg)
    if cfg.export_onnx:
        check_onnx()
    L.seed_everything(cfg.seed, workers=True)


def build(cfg: DictConfig) -> Built:
    """The data first, then the model and task its facts fill, joined in a TaskModule and
    checked against ``ckpt_path`` and the optimizer settings."""
    data = build_datamodule(cfg.data)
    fill_dims(cfg, data)
    check_filled(cfg)
    if cfg.print_config:
        print_config_tree(cfg)
    plain_config = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))
    model_config, source = split_model_config(cfg.model)
    check_model_fits_data(model_config, cfg.data.dims)
    model = instantiate(model_config)
    if source:
        log.info(init_from(model, source, model_config))
    module = TaskModule(
        model=model,
        task=instantiate(cfg.task),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler, _convert_="all") if cfg.scheduler else None,
        config=plain_config,
        train_metrics_every_n_steps=cfg.train_metrics_every_n_steps,
        data_facts=data.data_facts,
    )
    module.example_input_array = data.example_batch()[INPUTS][:1]  # sizes and FLOPs shown
    saved = check_checkpoint(cfg, module)
    check_optimizer(module)
    apply_performance_settings(cfg, module)
    return Built(data, module, model_config, plain_config, saved)


def check_checkpoint(cfg: DictConfig, module: TaskModule) -> Mapping[str, Any] | None:
    """The checkpoint of ``ckpt_path`` (memory-mapped, loaded once for every check), after
    checking it fits the module and, to resume, holds the same optimizer settings."""
    if not (cfg.ckpt_path and Path(cfg.ckpt_path).is_file()):
        return None
    saved = load_checkpoint(cfg.ckpt_path)
    check_compatible(cfg.ckpt_path, saved, module)
    if cfg.train:
        check_resumable(cfg.ckpt_path, saved, cast(dict[str, Any], module.run_config))
    return saved


def build_trainer(
    cfg: DictConfig, loggers: list[Any], plain_config: Mapping[str, Any]
) -> tuple[L.Trainer, RunCallbacks]:
    """The configured callbacks plus the ones every run gets, and the Trainer. Lightning
    passes over the batch hooks a callback leaves as no-ops (``skip_unused_batch_hooks``);
    those of the callbacks it calls before the run's own reach it through them
    (``RunCallbacks.relay_batch_hooks``)."""
    checkpoint_dir = Path(cfg.paths.checkpoint_dir)
    callbacks = instantiate_each(cfg.callbacks)
    check_checkpoint_dir(callbacks, checkpoint_dir)
    if cfg.trainer.enable_progress_bar is False:  # else Lightning refuses the bar callback
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    always = run_callbacks(checkpoint_dir)
    plugins = trainer_plugins(cfg.trainer.plugins)
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=[skip_unused_batch_hooks(c) for c in [*callbacks, always]],
        logger=loggers or False,
        plugins=plugins,
    )
    check_launcher(trainer, cfg.trainer.strategy)
    always.relay_batch_hooks(trainer)
    for logger in loggers:
        logger.log_hyperparams(dict(plain_config))
    return trainer, always


def fit(cfg: DictConfig, trainer: L.Trainer, built: Built, always: RunCallbacks) -> Outcome:
    """Train (resuming from ``ckpt_path``), leave ``last.ckpt`` and export the best
    checkpoint. ``train/*`` describe the last training epoch; ``val/*`` and ``test/*``
    come from the evaluated checkpoint, in ``evaluate``."""
    last = last_checkpoint(cfg.paths.checkpoint_dir)
    train(trainer, built, cfg.ckpt_path, always)
    metrics = {
        k: v for k, v in scalar_metrics(trainer.callback_metrics).items() if k.startswith("train/")
    }
    outcome = Outcome(metrics={**metrics, **always.best.summary})
    outcome.extra.update(early_stopping(trainer))
    checkpointing = trainer.checkpoint_callback
    if not isinstance(checkpointing, ModelCheckpoint):
        return outcome
    if not always.last.saved:  # at max_steps: that one holds the mid-epoch state
        trainer.save_checkpoint(last, weights_only=False)
    outcome.best = checkpointing.best_model_path or str(last)
    if trainer.is_global_zero:  # the other ranks share its folder
        best = load_checkpoint(outcome.best)
        outcome.extra.update(best_step=int(best["global_step"]), best_epoch=int(best["epoch"]))
        export(cfg, built, best["state_dict"])
    return outcome


def early_stopping(trainer: L.Trainer) -> dict[str, int]:
    """Where early stopping ended training, and the epochs it saved against the cap."""
    stopper = trainer.early_stopping_callback
    if stopper is None or stopper.stopped_epoch == 0:
        return {}
    trained = stopper.stopped_epoch + 1
    cap = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else trained
    return {"stopped_early_epochs": trained, "epochs_saved": cap - trained}


def train(trainer: L.Trainer, built: Built, ckpt_path: str | None, always: RunCallbacks) -> None:
    """``trainer.fit`` with SIGTERM/SIGINT turned into ``Interrupted`` once saved, and a
    non-finite loss's error completed with the checkpoint the stop kept. A run resumed in
    its own folder finds its own checkpoints there: Lightning's warning that the folder is
    not empty is dropped then."""
    interrupt = always.interrupt
    data = built.datamodule
    checkpointing = trainer.checkpoint_callback
    folder = checkpointing.dirpath if isinstance(checkpointing, ModelCheckpoint) else None
    resumes_here = ckpt_path is not None and os.path.dirname(os.path.realpath(ckpt_path)) == folder
    try:
        with warnings.catch_warnings():
            if resumes_here:
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* is not empty")
            trainer.fit(built.module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    except NonFiniteLossError as error:
        last = always.last.path
        kept = f"last good checkpoint: {last}" if last.is_file() else "no checkpoint saved yet"
        raise NonFiniteLossError(
            f"{error}, {kept}; a resume would restore the same optimizer settings, "
            "so retry with a lower optimizer.lr in a new run"
        ) from None
    except (SIGTERMException, SystemExit) as error:
        if interrupt.saved_on is None:
            raise
        code = 143 if interrupt.saved_on == "SIGTERM" else 130  # 128 + signal number
        raise Interrupted(
            f"{interrupt.saved_on} at step {trainer.global_step}: saved {interrupt.ckpt_path}; "
            f"resume with: {resume_command(Path(interrupt.ckpt_path).parent.parent)}",
            code,
        ) from error


def export(cfg: DictConfig, built: Built, state_dict: Mapping[str, torch.Tensor]) -> None:
    """The export of the best checkpoint's weights: the model, the data facts and a
    predictor that needs torch alone (``hlt_core.results.export``)."""
    module = built.module
    export_model(
        state_dict,
        built.model_config,
        module.feature_width,
        Path(cfg.paths.output_dir) / "export",
        module.data_facts,
        predictor=build_predictor(built.model_config, module),
        example=example_inputs(built.data.example_batch()),
        output_kind=module.task.output_kind,
        onnx=cfg.export_onnx,
    )


def evaluate(cfg: DictConfig, trainer: L.Trainer, built: Built, outcome: Outcome) -> None:
    """Validate (after training), test and predict with one checkpoint: the best one kept
    by training, else ``ckpt_path``. ``val/*`` are then of the model that is kept, which
    is what sweepers optimise and results.json reports."""
    outcome.evaluated = outcome.best if cfg.train else cfg.ckpt_path
    restore = outcome.evaluated  # what Lightning loads before evaluating
    if not cfg.train and built.saved is not None and holds_weights_only(built.saved):
        # Lightning restores only its own checkpoints: load bare weights ourselves
        built.module.load_state_dict(built.saved["state_dict"])
        restore = None
    module, data = built.module, built.datamodule
    if cfg.train:
        trainer.validate(
            module, datamodule=data, ckpt_path=restore, weights_only=True, verbose=False
        )
        outcome.metrics.update(scalar_metrics(trainer.callback_metrics))
    if cfg.test:
        trainer.test(module, datamodule=data, ckpt_path=restore, weights_only=True)
        outcome.metrics.update(scalar_metrics(trainer.callback_metrics))
    if cfg.predict:
        out = predictions_path(cfg, outcome.evaluated)
        outcome.extra["predictions"] = str(predict(trainer, built, restore, out))


def finish(
    cfg: DictConfig, started: datetime, trainer: L.Trainer, always: RunCallbacks, outcome: Outcome
) -> None:
    """``results.json``, the learning curve and the closing block on the console."""
    run_dir = Path(cfg.paths.output_dir)
    record = run_record(
        cfg,
        started,
        status="ok",
        evaluated_checkpoint=outcome.evaluated,
        best_checkpoint=outcome.best,
        global_step=trainer.global_step,
        **always.throughput.summary,
        **outcome.extra,
        **label_names(cfg.data.dims),
    )
    write_results(run_dir, {**dict(sorted(outcome.metrics.items())), **record})
    if cfg.train:
        learning_curve(always.history.rows, run_dir / "learning_curve.png")
    last = last_checkpoint(cfg.paths.checkpoint_dir)
    outputs = {
        "best checkpoint": outcome.best,
        "last checkpoint": last if last.is_file() else None,
        "export": run_dir / "export" if (run_dir / "export").is_dir() else None,
        "predictions": outcome.extra.get("predictions"),
        "results": run_dir / "results.json",
        **upload_commands(),
    }
    report_end(log, {**outcome.metrics, **record}, outputs)


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


def check_optimizer(module: TaskModule) -> None:
    """Build the configured optimizer on a throwaway parameter, so that a bad setting
    (a negative lr, betas out of range) fails before training, in one line."""
    try:
        module.optimizer_factory([torch.nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as error:
        raise UserError(f"optimizer: {_one_line(error)}") from None


@contextmanager
def job_resources(loggers: list[Any], run_dir: Path, name: str) -> Iterator[None]:
    """What a job holds beyond its folder, released when it ends however it ends: its
    logger runs and its distributed processes, so that the next job of a multirun in
    this process starts afresh (``hlt_core.jobs.ddp_jobs``)."""
    environment = launch_environment()
    announce_job(run_dir, _in_multirun(), name)
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


def build_predictor(model_config: Mapping[str, Any], module: TaskModule) -> Predictor:
    """A fresh, uncompiled copy of the run's model and decoder with the task's output
    transform and the data's feature statistics (the export loads the weights)."""
    facts = module.data_facts
    model = instantiate(model_config)
    return Predictor(
        model,
        build_decoder(model, module.task, module.feature_width),
        module.task.output_transform(),
        facts.get("feature_mean"),
        facts.get("feature_std"),
        model_config.get("max_len"),
    )


def predictions_path(cfg: DictConfig, evaluated: str | None) -> Path:
    """``predictions`` if named, else predictions.csv in the run folder of the evaluated
    checkpoint (``<run>/checkpoints/<name>.ckpt``), else in this run's folder."""
    if cfg.predictions:
        return Path(cfg.predictions)
    ckpt = Path(evaluated) if evaluated else None
    if ckpt is not None and ckpt.is_file() and ckpt.parent.name == "checkpoints":
        return ckpt.parent.parent / "predictions.csv"
    return Path(cfg.paths.output_dir) / "predictions.csv"


def predict(trainer: L.Trainer, built: Built, ckpt: str | None, out: Path) -> Path:
    """The predictions table of the predict split (the test split), ids from the data."""
    module = built.module
    batches = trainer.predict(
        module, datamodule=built.datamodule, ckpt_path=ckpt, weights_only=True
    )
    outputs = in_split_order(trainer, batches or [])  # None on ranks other than 0
    if outputs is not None:
        ids = built.data.row_ids("test") or [("", str(i)) for i in range(len(outputs))]
        labels = module.data_facts.get("labels", [])
        with prediction_table(out, module.task.output_kind, labels) as table:
            table.write(ids, outputs, built.data.true_targets("test"))
        print(f"predictions: {out}")
    return out


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


CPU_ALLOCATION = "DefaultCPUAllocator: can't allocate memory"  # torch's RuntimeError text


def resource_error(error: BaseException) -> str | None:
    """A full disk or exhausted memory, said as such (with what to do), or None."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        where = f" writing {error.filename}" if error.filename else ""
        return f"disk full{where}: free space, then resume from the last checkpoint"
    out_of_memory = isinstance(error, MemoryError | torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and CPU_ALLOCATION in str(error)
    )
    if out_of_memory:
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
            write_failure(cfg, started, _one_line(error))
            return math.nan
        if not user:
            raise
        record_failure(cfg, started, _one_line(error))
        exit_user_error(_one_line(error))


def write_failure(cfg: DictConfig, started: datetime, message: str) -> None:
    """``results.json`` with ``status: failed`` and the error; on a full disk it may not
    fit, and the error line is then all there is."""
    try:
        write_results(
            Path(cfg.paths.output_dir), run_record(cfg, started, status="failed", error=message)
        )
    except OSError as error:
        log.warning(f"results.json not written: {error}")


def record_failure(cfg: DictConfig, started: datetime, message: str) -> None:
    """A failed run says so in the folder it leaves: ``results.json`` (never over an
    earlier run's results), and the error line in app.log (the console shows it once, on
    stderr)."""
    run_dir = Path(cfg.paths.output_dir)
    if run_dir.is_dir() and not (run_dir / "results.json").exists():
        write_failure(cfg, started, message)
    entry = log.makeRecord(log.name, logging.ERROR, __file__, 0, f"error: {message}", (), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(entry)
