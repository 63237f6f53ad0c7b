"""Integer (ordinal) targets read as a regression: one real output, rounded to a class.

The same data as ``ClassificationTask`` (targets 0..num_classes-1) read a second way:
where class order means something, regression uses it; where it does not, it hurts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torchmetrics import MeanAbsoluteError
from torchmetrics.classification import MulticlassF1Score

from hlt_tasks.base import TARGETS, Batch, Task
from hlt_tasks.decoders import PooledDecoder
from hlt_tasks.metrics import Accuracy, Metrics
from hlt_tasks.regression import LOSSES, regression_loss


class OrdinalRegressionTask(Task):
    """MSE (or Huber) on the class index; predictions round and clamp to a class.

    Metrics are computed on predicted classes: accuracy and macro F1 (comparable with
    ``ClassificationTask``) and MAE in classes.
    """

    decoder_cls = PooledDecoder
    target_type = "class"

    def __init__(
        self,
        num_classes: int,
        loss: str = "mse",
        huber_delta: float = 1.0,
        decoder: Mapping[str, Any] | None = None,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"OrdinalRegressionTask needs num_classes >= 2, got {num_classes}")
        if loss not in LOSSES:
            raise ValueError(f"ordinal loss={loss!r} is unknown; choose one of {list(LOSSES)}")
        super().__init__(output_size=1, decoder=decoder)
        self.num_classes = num_classes
        self.loss_kind = loss
        self.huber_delta = huber_delta

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        target = batch[TARGETS].float().reshape(-1)
        return regression_loss(
            self.loss_kind, self.huber_delta, outputs.float().reshape(-1), target
        )

    def metrics(self, prefix: str) -> Metrics:
        return Metrics(
            {
                "acc": Accuracy(self.num_classes),
                "f1": MulticlassF1Score(self.num_classes, average="macro"),
                "mae": MeanAbsoluteError(),
            },
            prefix=prefix,
        )

    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predict(outputs), batch[TARGETS].long().reshape(-1)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().reshape(-1).round().clamp(0, self.num_classes - 1).long()
