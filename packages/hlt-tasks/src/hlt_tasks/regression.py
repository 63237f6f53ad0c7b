"""Regression of one or more continuous targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from hlt_tasks.base import Batch, Task
from hlt_tasks.decoders import LinearDecoder


class RegressionTask(Task):
    """Reads outputs as real values; MSE loss; MSE, MAE and R² metrics."""

    decoder_cls = LinearDecoder

    def __init__(self, output_dim: int = 1, decoder: Mapping[str, Any] | None = None) -> None:
        super().__init__(out_features=output_dim, decoder=decoder)

    def _target(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return batch["targets"].to(outputs.dtype).reshape(outputs.shape)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.mse_loss(outputs, self._target(outputs, batch))

    def metrics(self, prefix: str) -> MetricCollection:
        return MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()},
            prefix=prefix,
        )

    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return outputs.squeeze(-1), self._target(outputs, batch).squeeze(-1)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs
