"""The smallest components that keep hlt-core's promises (``hlt_core.contracts``), for
testing the run, resume, export and sweeps without hlt-models, hlt-tasks or hlt-data.

``StandInData`` draws a fixed two-class problem (the class says whether the first input
is positive), ``StandInModel`` is one linear layer, ``StandInTask`` a linear decoder with
cross-entropy and accuracy. ``run_config`` is a whole run's config that builds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from hlt_core.contracts import INPUTS, TARGETS, Batch, DataModule, Model, Task
from hlt_core.schemas import RunConfig

SPLITS = ("train", "val", "test")


class StandInModel(nn.Module):
    """``inputs`` -> features of width ``out_features``."""

    def __init__(self, input_dim: int, out_features: int = 8) -> None:
        super().__init__()
        self.out_features = out_features
        self.layer = nn.Linear(input_dim, out_features)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.layer(inputs))


class Accuracy:
    """The share of right answers over the batches since ``reset``."""

    def __init__(self, prefix: str) -> None:
        self.name = f"{prefix}acc"
        self.right, self.seen = 0, 0

    def update(self, *args: Any) -> None:
        predicted, targets = args
        self.right += int((predicted == targets).sum())
        self.seen += len(targets)

    def compute(self) -> dict[str, Any]:
        return {self.name: self.right / max(self.seen, 1)}

    def reset(self) -> None:
        self.right, self.seen = 0, 0


class StandInTask:
    """Two classes: a linear decoder, cross-entropy, accuracy, probabilities out."""

    target_type: ClassVar[str] = "class"
    output_kind: ClassVar[str] = "probabilities"

    def __init__(self, num_classes: int = 2) -> None:
        self.num_classes = num_classes

    def build_decoder(self, in_features: int) -> nn.Module:
        return nn.Linear(in_features, self.num_classes)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs, batch[TARGETS])

    def metrics(self, prefix: str) -> Accuracy:
        return Accuracy(prefix)

    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return outputs.argmax(dim=-1), batch[TARGETS]

    def output_transform(self) -> nn.Module:
        return nn.Softmax(dim=-1)


class StandInData(L.LightningDataModule):
    """``batches`` batches of ``batch_size`` rows per split, the same for a seed; rows are
    named ``r<i>`` and the label names are ``neg`` and ``pos``."""

    def __init__(self, input_dim: int = 3, batch_size: int = 4, batches: int = 3, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.splits: dict[str, list[dict[str, torch.Tensor]]] = {}
        for split in SPLITS:
            inputs = torch.randn(batches, batch_size, input_dim, generator=generator)
            self.splits[split] = [
                {INPUTS: x, TARGETS: (x[:, 0] > 0).long()} for x in inputs.unbind()
            ]
        self.input_dim = input_dim

    @property
    def dims(self) -> Mapping[str, Any]:
        return {"input_dim": self.input_dim, "num_classes": 2, "labels": ["neg", "pos"]}

    @property
    def data_facts(self) -> Mapping[str, Any]:
        return {"dims": dict(self.dims), "labels": ["neg", "pos"]}

    def row_ids(self, split: str) -> list[tuple[str, str]]:
        rows = sum(len(batch[TARGETS]) for batch in self.splits[split])
        return [("stand-in", f"r{i}") for i in range(rows)]

    def true_targets(self, split: str) -> list[str]:
        names = self.data_facts["labels"]
        return [names[int(t)] for batch in self.splits[split] for t in batch[TARGETS]]

    def example_batch(self) -> Batch:
        return self.splits["train"][0]

    def loader(self, split: str) -> DataLoader:
        """The split's batches as they are, in order (``batch_size=None``: no collating)."""
        batches = cast(Dataset, self.splits[split])  # a list is a map-style dataset
        return DataLoader(batches, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train")

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.loader("test")


def run_config(run_dir: str | Path, **overrides: Any) -> DictConfig:
    """A whole run's config (the run schema's defaults) that builds the stand-ins, writes
    into ``run_dir`` and trains two short epochs on CPU without a logger; ``overrides``
    are dotted keys (``{"trainer.max_steps": 4}``)."""
    run_dir = Path(run_dir)
    node = {
        "name": "stand_in",
        "print_config": False,
        "data": {"_target_": f"{__name__}.StandInData"},
        "model": {"_target_": f"{__name__}.StandInModel", "input_dim": "${data.dims.input_dim}"},
        "task": {"_target_": f"{__name__}.StandInTask"},
        "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
        "paths": {"output_dir": str(run_dir), "checkpoint_dir": str(run_dir / "checkpoints")},
        "callbacks": {
            "model_checkpoint": {
                "_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
                "dirpath": "${paths.checkpoint_dir}",
                "monitor": "val/loss",
                "mode": "min",
                "save_last": True,
                "enable_version_counter": False,
            }
        },
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
        },
    }
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), node)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    assert isinstance(cfg, DictConfig)
    return cfg


if TYPE_CHECKING:  # mypy checks that the stand-ins keep hlt-core's promises
    _model: Model = StandInModel(3)
    _task: Task = StandInTask()
    _data: DataModule = StandInData()
