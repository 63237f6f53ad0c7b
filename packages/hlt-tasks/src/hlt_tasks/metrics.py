"""Accuracy counted the way macro F1 counts: one update serves both.

A ``MetricCollection`` updates metrics with equal states once per batch for all of them
(its compute groups). torchmetrics' micro accuracy keeps totals over all classes, macro
F1 keeps counts per class, so the two are updated separately; counted per class, the
accuracy shares F1's counts and its value is the same.
"""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.utilities import dim_zero_cat


class Accuracy(MulticlassAccuracy):
    """Micro accuracy (the share of counted examples whose top class is the target) from
    per-class counts; ``ignore_index`` targets are not counted."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        super().__init__(num_classes, average="macro", ignore_index=ignore_index)

    def compute(self) -> torch.Tensor:
        correct = dim_zero_cat(self.tp).sum()
        counted = correct + dim_zero_cat(self.fn).sum()
        return correct.float() / counted.clamp(min=1).float()
