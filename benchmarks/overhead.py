"""Per-step overhead of hlt's training path against a raw PyTorch loop and bare Lightning.

The same model (``hlt_models.MLP`` + a linear head), the same pre-drawn batches, the
same optimizer (the project's ``optimizer=adamw`` config) and the same batch size are
trained three ways:

- ``raw``: a hand-written loop (zero_grad, forward, cross-entropy, backward, step);
- ``lightning``: a minimal LightningModule and a Trainer with logger, checkpointing,
  progress bar and model summary off;
- ``hlt``: hlt's own path, composed from the project configs (``experiment=clusters_mlp``):
  ``TaskModule``, ``ClassificationTask`` with its torchmetrics, the default callbacks
  (TQDM bar, model summary, checkpoint) and the default CSV logger.

Time per step is read from a timestamp taken at every training forward (the same wrapper
in all three), over the steady state after ``--warmup`` steps, so start-up, the model
summary and the end-of-epoch checkpoint are not counted. The three run interleaved, in a
rotating order, ``--repeats`` times; medians and ratios to the raw loop are printed as JSON.

    uv run python benchmarks/overhead.py            # both sizes, ~1-2 minutes on 2 CPUs
    uv run python benchmarks/overhead.py --sizes small --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import platform
import statistics
import tempfile
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from torch import nn
from torch.utils.data import DataLoader

from hlt_core.callbacks import run_callbacks
from hlt_core.data_facts import build_datamodule, fill_dims
from hlt_core.hydra_compat import VERSION_BASE
from hlt_core.module import TaskModule
from hlt_core.performance import apply_performance_settings
from hlt_core.run import instantiate_each
from hlt_core.schemas import register_schemas
from hlt_models import MLP
from stamped import Stamped

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

SIZES: dict[str, dict[str, int]] = {
    # the default experiment: clusters (16 dims, 4 classes), MLP 128 x 2, batch 64
    "small": {"input_dim": 16, "num_classes": 4, "hidden_dim": 128, "num_layers": 2,
              "batch_size": 64, "steps": 400, "warmup": 50},
    # a raw step of >= 10 ms on one CPU thread (about 14 ms here)
    "medium": {"input_dim": 256, "num_classes": 10, "hidden_dim": 512, "num_layers": 2,
               "batch_size": 384, "steps": 150, "warmup": 20},
}  # fmt: skip


def make_batches(size: dict[str, int]) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [
        {
            "inputs": torch.randn(size["batch_size"], size["input_dim"], generator=gen),
            "targets": torch.randint(0, size["num_classes"], (size["batch_size"],), generator=gen),
        }
        for _ in range(size["steps"])
    ]


def make_model(size: dict[str, int]) -> Stamped:
    torch.manual_seed(0)
    return Stamped(MLP(size["input_dim"], size["hidden_dim"], size["num_layers"]))


def compose_cfg(size: dict[str, int], out: str, overrides: list[str]) -> Any:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        cfg = compose(
            "train",
            overrides=[
                "experiment=clusters_mlp",
                f"paths.output_dir={out}",
                f"data.sampler.input_dim={size['input_dim']}",
                f"data.sampler.num_classes={size['num_classes']}",
                f"model.hidden_dim={size['hidden_dim']}",
                f"model.num_layers={size['num_layers']}",
                "trainer.max_epochs=1",
                "trainer.limit_val_batches=0",
                *overrides,
            ],
        )
    fill_dims(cfg, build_datamodule(cfg.data))  # as a run does: the task reads data.dims
    return cfg


def run_raw(size, batches, cfg) -> float:
    model = make_model(size)
    head = nn.Linear(size["hidden_dim"], size["num_classes"])
    params = list(model.parameters()) + list(head.parameters())
    optimizer = instantiate(cfg.optimizer)(params)
    model.train()
    for batch in DataLoader(batches, batch_size=None):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(model(batch["inputs"])), batch["targets"])
        loss.backward()
        optimizer.step()
    return model.per_step_ms(size["warmup"])


class BareModule(L.LightningModule):
    def __init__(self, model: Stamped, head: nn.Module, optimizer: Any) -> None:
        super().__init__()
        self.model, self.head, self.optimizer_factory = model, head, optimizer

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.head(self.model(batch["inputs"])), batch["targets"])

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())


def run_lightning(size, batches, cfg) -> float:
    model = make_model(size)
    module = BareModule(
        model, nn.Linear(size["hidden_dim"], size["num_classes"]), instantiate(cfg.optimizer)
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, DataLoader(batches, batch_size=None))
    return model.per_step_ms(size["warmup"])


def run_hlt(size, batches, cfg) -> float:
    model = make_model(size)
    module = TaskModule(
        model=model,
        task=instantiate(cfg.task),
        optimizer=instantiate(cfg.optimizer),
        config=None,
        train_metrics_every_n_steps=cfg.train_metrics_every_n_steps,
    )
    apply_performance_settings(cfg, module)
    # the configured callbacks plus those `run` adds to every run
    callbacks = [*instantiate_each(cfg.callbacks), run_callbacks(cfg.paths.output_dir)]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=instantiate_each(cfg.logger))
    trainer.fit(module, DataLoader(batches, batch_size=None))
    return model.per_step_ms(size["warmup"])


RUNNERS = {"raw": run_raw, "lightning": run_lightning, "hlt": run_hlt}


def bench_size(name: str, repeats: int, hlt_overrides: list[str]) -> dict[str, Any]:
    size = SIZES[name]
    batches = make_batches(size)
    times: dict[str, list[float]] = {k: [] for k in RUNNERS}
    order = list(RUNNERS)
    with tempfile.TemporaryDirectory() as out:
        cfg = compose_cfg(size, out, hlt_overrides)
        run_hlt(size, batches[: size["warmup"] + 5], cfg)  # warm imports and caches
        for r in range(repeats):
            rotated = order[r % 3 :] + order[: r % 3]
            for variant in rotated:
                times[variant].append(RUNNERS[variant](size, batches, cfg))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "config": size,
        "per_step_ms": {k: [round(t, 4) for t in v] for k, v in times.items()},
        "median_ms": {k: round(v, 4) for k, v in med.items()},
        "ratio_to_raw": {k: round(v / med["raw"], 4) for k, v in med.items()},
        "overhead_ms_vs_raw": {k: round(v - med["raw"], 4) for k, v in med.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--hlt-override", action="append", default=[], help="extra override")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    register_schemas()
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    result: dict[str, Any] = {
        "benchmark": "overhead",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": __import__("os").cpu_count(),
            "torch_threads": args.threads,
            "torch": torch.__version__,
            "lightning": L.__version__,
        },
        "repeats": args.repeats,
        "hlt_overrides": args.hlt_override,
        "sizes": {},
    }
    sink = io.StringIO()
    for name in args.sizes:
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            result["sizes"][name] = bench_size(name, args.repeats, args.hlt_override)
    small = result["sizes"].get("small")
    medium = result["sizes"].get("medium")
    result["goals"] = {
        "small_hlt_overhead_ms<=0.5": None
        if small is None
        else small["overhead_ms_vs_raw"]["hlt"] <= 0.5,
        "medium_hlt_ratio<=1.05": None if medium is None else medium["ratio_to_raw"]["hlt"] <= 1.05,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
