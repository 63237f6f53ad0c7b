"""Decoder heads. They live apart from tasks so that several tasks can share one."""

from __future__ import annotations

import torch
from torch import nn


class LinearDecoder(nn.Module):
    """A single linear map from model features to task outputs."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)
