"""A toy model package: shows how a package outside the workspace adds `model=toy`."""

import torch
from torch import nn


class ToyModel(nn.Module):
    """One linear layer and a ReLU; states its feature width as ``out_features``."""

    def __init__(self, input_dim: int, width: int = 32) -> None:
        super().__init__()
        self.layer = nn.Linear(input_dim, width)
        self.out_features = width

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.layer(inputs))
