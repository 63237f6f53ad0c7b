"""A multilayer perceptron backbone for fixed-width inputs."""

from __future__ import annotations

import torch
from torch import nn

from hlt_models.embeddings import TableInputs

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Maps ``(batch, input_dim)`` to ``(batch, hidden_dim)`` features.

    ``num_layers`` hidden layers of Linear -> LayerNorm -> activation -> dropout. The
    decoder that turns features into outputs belongs to the task, not to the model.
    With ``categories`` (a table's category columns, ``TableInputs``) the last inputs
    are category codes, one-hot or embedded before the first layer.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        activation: str = "gelu",
        categories: list[int] | None = None,
    ) -> None:
        super().__init__()
        if input_dim < 1 or hidden_dim < 1 or num_layers < 1:
            raise ValueError(
                f"MLP needs input_dim, hidden_dim and num_layers >= 1, got "
                f"input_dim={input_dim}, hidden_dim={hidden_dim}, num_layers={num_layers}"
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"MLP activation={activation!r} is unknown; choose one of {sorted(_ACTIVATIONS)}"
            )
        layers: list[nn.Module] = []
        width = input_dim
        self.table = TableInputs(input_dim, categories) if categories else None
        if self.table is not None:
            width = self.table.out_features
        for _ in range(num_layers):
            layers += [
                nn.Linear(width, hidden_dim),
                nn.LayerNorm(hidden_dim),
                _ACTIVATIONS[activation](),
                nn.Dropout(dropout),
            ]
            width = hidden_dim
        self.net = nn.Sequential(*layers)
        self.input_dim = input_dim
        self.out_features = hidden_dim

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.table is not None:
            inputs = self.table(inputs)
        return self.net(inputs)
