"""Classification of one target per example, from integer class targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAUROC, MulticlassF1Score

from hlt_tasks.base import TARGETS, Batch, Task
from hlt_tasks.decoders import PooledDecoder
from hlt_tasks.metrics import Accuracy, Metrics
from hlt_tasks.outputs import MemberMeanProbabilities, Probabilities


class ClassificationTask(Task):
    """Reads outputs as class logits; cross-entropy loss; accuracy and macro F1, plus
    AUROC when there are two classes. Sequence features are pooled (``decoder.pool``)."""

    decoder_cls = PooledDecoder
    target_type = "class"
    output_kind = "probabilities"

    def __init__(
        self,
        num_classes: int,
        label_smoothing: float = 0.0,
        decoder: Mapping[str, Any] | None = None,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"ClassificationTask needs num_classes >= 2, got {num_classes}")
        super().__init__(output_size=num_classes, decoder=decoder)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(
            outputs.float(), batch[TARGETS].long(), label_smoothing=self.label_smoothing
        )

    def metrics(self, prefix: str) -> Metrics:
        metrics: dict[str, Metric] = {
            "acc": Accuracy(self.num_classes),
            "f1": MulticlassF1Score(self.num_classes, average="macro"),
        }
        if self.num_classes == 2:
            # with softmax probabilities, class-1 AUROC is the binary AUROC
            metrics["auroc"] = MulticlassAUROC(2, average="macro")
        return Metrics(metrics, prefix=prefix)

    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities where AUROC reads them (two classes), else the logits: accuracy
        and F1 read only their top class, the one ``predict`` gives. A softmax over a few
        classes costs more on a CPU than those metrics (about 0.1 ms for 384 rows of 10)."""
        scores = outputs.float()
        if self.num_classes == 2:
            scores = scores.softmax(dim=-1)
        return scores, batch[TARGETS].long()

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=-1)

    def output_transform(self) -> nn.Module:
        return Probabilities()

    def member_combiner(self) -> nn.Module:
        return MemberMeanProbabilities()
