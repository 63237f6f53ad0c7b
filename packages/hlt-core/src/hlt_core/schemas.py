"""Structured-config schemas: the typed shape of a run's config.

Registered in Hydra's ConfigStore by ``register_schemas()``; the primary config lists
``hlt_run_schema`` first in its defaults so that values are checked at compose time
(``trainer.max_epochs=abc`` fails naming the key) and unknown keys are refused.
Imports neither torch nor Lightning. Works with Hydra 1.3 (OmegaConf 2.3) and 1.4
(OmegaConf 2.4) alike, without their deprecation warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import omegaconf
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from hlt_core.jobs.ddp_jobs import run_stamp

if TYPE_CHECKING:  # contracts imports torch; resolving a config must not
    from hlt_core.contracts import Task

# OmegaConf 2.3 supports Optional but not other unions: options such as `devices`
# (int, list or "auto") are typed Any and checked by Lightning itself.


@dataclass
class TrainerConfig:
    """Arguments of ``lightning.pytorch.Trainer`` with Lightning's own defaults."""

    _target_: str = "lightning.pytorch.Trainer"
    accelerator: str = "auto"
    strategy: Any = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    precision: Any = None
    fast_dev_run: Any = False
    max_epochs: int | None = None
    min_epochs: int | None = None
    max_steps: int = -1
    min_steps: int | None = None
    max_time: str | None = None
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    limit_predict_batches: Any = None
    overfit_batches: Any = 0.0
    val_check_interval: Any = None
    check_val_every_n_epoch: int | None = 1
    num_sanity_val_steps: int | None = None
    log_every_n_steps: int | None = None
    enable_checkpointing: bool | None = None
    enable_progress_bar: bool | None = None
    enable_model_summary: bool | None = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str | None = None
    deterministic: Any = None
    benchmark: bool | None = None
    inference_mode: bool = True
    use_distributed_sampler: bool = True
    profiler: Any = None
    detect_anomaly: bool = False
    barebones: bool = False
    sync_batchnorm: bool = False
    reload_dataloaders_every_n_epochs: int = 0
    default_root_dir: str | None = None
    plugins: Any = None


@dataclass
class RunConfig:
    """The whole run. Component groups (data, model, task, ...) are free-form nodes
    whose ``_target_`` decides their shape; their own keys are still struct-checked."""

    name: str = "default"
    seed: int = 42
    train: bool = True
    test: bool = True
    ckpt_path: str | None = None
    resume: str | None = None  # the run folder this run continues (hlt_core.jobs.resume)
    resume_changes: list[str] = field(default_factory=list)  # overrides changed at resume
    predict: bool = False
    predictions: str | None = None
    export_onnx: bool = False
    optimized_metric: str | None = None
    tags: list[str] = field(default_factory=list)
    data_made_by: str | None = None  # the command that writes the data, named if missing
    print_config: bool = True
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    data: Any = MISSING
    model: Any = MISSING
    task: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    logger: Any = None
    callbacks: Any = None
    paths: Any = None
    # performance (applied by hlt_core.training.performance.apply_performance_settings)
    matmul_precision: str | None = None  # highest | high | medium (TF32 on GPUs)
    compile: bool = False  # torch.compile the model and decoder in place
    compile_options: Any = None  # keyword arguments of torch.compile
    train_metrics_every_n_steps: int | None = None  # null: on logging steps


def task_target_type(*, _root_: Any) -> str:
    """``${hlt.task_target_type:}``: how the configured task reads targets (its class's
    ``target_type``: class, real or none), so the data reads them that way. Imports the
    task's package only when resolved, at run time."""
    from hydra.utils import get_class

    target = OmegaConf.select(_root_, "task._target_")
    if not target:
        return "auto"
    task: type[Task] = get_class(target)
    return task.target_type


def register_schemas() -> None:
    """The run schema and hlt's resolvers: what the primary config needs to compose.
    Safe to call again: Hydra 1.4 warns when a ConfigStore name is stored twice."""
    store = ConfigStore.instance()
    if "hlt_run_schema.yaml" not in store.list(""):
        store.store(name="hlt_run_schema", node=RunConfig)
    # cached: each read of a config's run folder gives the same stamp, as ${now:} does
    if omegaconf.__version__.startswith("2.3."):
        OmegaConf.register_new_resolver("hlt.task_target_type", task_target_type, replace=True)
        OmegaConf.register_new_resolver("hlt.run_stamp", run_stamp, replace=True, use_cache=True)
    else:  # OmegaConf 2.4 renamed it; 2.3's register_resolver is the legacy string-only API
        OmegaConf.register_resolver(  # type: ignore[call-arg]
            "hlt.task_target_type", task_target_type, replace=True
        )
        OmegaConf.register_resolver(  # type: ignore[call-arg]
            "hlt.run_stamp", run_stamp, replace=True, use_cache=True
        )
