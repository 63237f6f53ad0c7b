"""Regression of one or more continuous targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from hlt_tasks.base import Batch, Task
from hlt_tasks.decoders import PooledDecoder

LOSSES = ("mse", "huber")


def regression_loss(kind: str, delta: float, outputs: torch.Tensor, target: torch.Tensor):
    if kind == "huber":
        return F.huber_loss(outputs, target, delta=delta)
    return F.mse_loss(outputs, target)


class RegressionTask(Task):
    """Reads outputs as real values; MSE (or Huber) loss; MSE, MAE and R² metrics."""

    decoder_cls = PooledDecoder

    def __init__(
        self,
        output_dim: int = 1,
        loss: str = "mse",
        huber_delta: float = 1.0,
        decoder: Mapping[str, Any] | None = None,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"regression loss={loss!r} is unknown; choose one of {list(LOSSES)}")
        super().__init__(out_features=output_dim, decoder=decoder)
        self.loss_kind = loss
        self.huber_delta = huber_delta

    def _target(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return batch["targets"].to(outputs.dtype).reshape(outputs.shape)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        outputs = outputs.float()
        return regression_loss(
            self.loss_kind, self.huber_delta, outputs, self._target(outputs, batch)
        )

    def metrics(self, prefix: str) -> MetricCollection:
        return MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()},
            prefix=prefix,
        )

    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = outputs.float()
        return outputs.squeeze(-1), self._target(outputs, batch).squeeze(-1)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs
