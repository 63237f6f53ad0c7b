"""Output transforms: a task's decoder outputs as the values a user reads.

They are modules (not methods) so that the export can put them into one predictor graph
that runs with torch alone; buffers are not persistent, so checkpoints do not change.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Probabilities(nn.Module):
    """Logits -> class probabilities (softmax over the last dimension, in float32)."""

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().softmax(dim=-1)


class OriginalUnits(nn.Module):
    """Standardised regression outputs -> values in the targets' units: ``y * std + mean``."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, shift: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("shift", shift.clone(), persistent=False)
        self.register_buffer("scale", scale.clone(), persistent=False)

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float() * self.scale + self.shift


class Values(nn.Module):
    """Outputs read as they are, in float32."""

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float()


class MemberMean(nn.Module):
    """Ensemble members' outputs ``(batch, members, ...)`` -> their mean: the ensemble's
    value (the mean of standardised values is the standardised mean)."""

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().mean(dim=1)


class MemberMeanProbabilities(nn.Module):
    """Ensemble members' logits ``(batch, members, classes)`` -> logits whose softmax is
    the mean of the members' probabilities: ``log(mean_i softmax(z_i))``. Averaging
    probabilities, not logits, is how an ensemble of classifiers predicts (TabM's too)."""

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        members = outputs.shape[1]
        return torch.logsumexp(outputs.float().log_softmax(dim=-1), dim=1) - math.log(members)
