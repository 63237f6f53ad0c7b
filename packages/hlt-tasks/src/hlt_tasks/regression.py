"""Regression of one or more continuous targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, R2Score

from hlt_tasks.base import TARGETS, Batch, Task
from hlt_tasks.decoders import PooledDecoder
from hlt_tasks.metrics import Metrics
from hlt_tasks.outputs import OriginalUnits

LOSSES = ("mse", "huber")


def regression_loss(kind: str, delta: float, outputs: torch.Tensor, target: torch.Tensor):
    if kind == "huber":
        return F.huber_loss(outputs, target, delta=delta)
    return F.mse_loss(outputs, target)


class RegressionTask(Task):
    """Reads outputs as real values; MSE (or Huber) loss; MSE, MAE and R² metrics.

    With ``target_mean`` and ``target_std`` (stated by the data from its training split)
    the decoder learns standardised targets, ``(y - mean) / std``, so the loss is in
    standard units whatever the scale of ``y``; metrics and predictions are mapped back
    and are always in the targets' original units.
    """

    decoder_cls = PooledDecoder
    target_type = "real"

    def __init__(
        self,
        output_dim: int = 1,
        loss: str = "mse",
        huber_delta: float = 1.0,
        target_mean: float | Sequence[float] | None = None,
        target_std: float | Sequence[float] | None = None,
        decoder: Mapping[str, Any] | None = None,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"regression loss={loss!r} is unknown; choose one of {list(LOSSES)}")
        super().__init__(output_size=output_dim, decoder=decoder)
        self.loss_kind = loss
        self.huber_delta = huber_delta
        self.shift = torch.as_tensor(0.0 if target_mean is None else target_mean).float()
        self.scale = torch.as_tensor(1.0 if target_std is None else target_std).float()
        if (self.scale <= 0).any():
            raise ValueError(f"regression target_std={target_std} must be > 0")
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def _shift_scale(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Copied to each device once, not on every step."""
        if device not in self._on_device:
            self._on_device[device] = (self.shift.to(device), self.scale.to(device))
        return self._on_device[device]

    def _target(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return batch[TARGETS].to(outputs.dtype).reshape(outputs.shape)

    def original_units(self, outputs: torch.Tensor) -> torch.Tensor:
        """Decoder outputs (standardised) as values in the targets' units."""
        shift, scale = self._shift_scale(outputs.device)
        return outputs * scale + shift

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        outputs = outputs.float()
        target = self._target(outputs, batch)
        shift, scale = self._shift_scale(target.device)
        standard = (target - shift) / scale
        return regression_loss(self.loss_kind, self.huber_delta, outputs, standard)

    def metrics(self, prefix: str) -> Metrics:
        return Metrics(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()},
            prefix=prefix,
        )

    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.original_units(outputs.float())
        return outputs.squeeze(-1), self._target(outputs, batch).squeeze(-1)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.original_units(outputs.float())

    def output_transform(self) -> nn.Module:
        return OriginalUnits(self.shift, self.scale)
