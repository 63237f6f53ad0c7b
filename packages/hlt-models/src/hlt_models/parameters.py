"""Model size, counted one way for every model (benchmarks and tests read it here)."""

from __future__ import annotations

from torch import nn


def num_parameters(model: nn.Module) -> int:
    """How many numbers ``model`` holds as parameters, trainable or not."""
    return sum(p.numel() for p in model.parameters())
