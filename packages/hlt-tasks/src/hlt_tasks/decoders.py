"""Decoder heads. They live apart from tasks so that several tasks can share one.

Every decoder takes ``(in_features, out_features, **options)``; the options come from a
task config's ``decoder:`` node (for example ``task.decoder.pool=mean``).
"""

from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class LinearDecoder(nn.Module):
    """A single linear map on the last dimension (any leading shape)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)


class MLPDecoder(nn.Module):
    """``num_layers`` hidden layers (Linear, activation, dropout), then a linear output."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_dim: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"decoder activation={activation!r} is unknown; choose one of "
                f"{sorted(_ACTIVATIONS)}"
            )
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(num_layers):
            layers += [
                nn.Linear(width, hidden_dim),
                _ACTIVATIONS[activation](),
                nn.Dropout(dropout),
            ]
            width = hidden_dim
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


def head(in_features: int, out_features: int, hidden_dim: int | None, **mlp) -> nn.Module:
    """Linear when ``hidden_dim`` is None, else an MLP head."""
    if hidden_dim is None:
        return LinearDecoder(in_features, out_features)
    return MLPDecoder(in_features, out_features, hidden_dim, **mlp)


class PooledDecoder(nn.Module):
    """One output per example: ``(B, L, D)`` features are pooled to ``(B, D)`` first.

    ``pool="last"`` reads the last position (what a causal model has seen everything
    at), ``"mean"`` averages positions, ``"first"`` reads position 0 (a CLS token).
    ``(B, D)`` features (an MLP's) pass straight to the head, so the same task serves
    fixed-width and sequence models.
    """

    pools = ("last", "mean", "first")

    def __init__(
        self,
        in_features: int,
        out_features: int,
        pool: str = "last",
        hidden_dim: int | None = None,
        **mlp,
    ) -> None:
        super().__init__()
        if pool not in self.pools:
            raise ValueError(f"decoder pool={pool!r} is unknown; choose one of {list(self.pools)}")
        self.pool = pool
        self.head = head(in_features, out_features, hidden_dim, **mlp)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() == 3:
            if self.pool == "last":
                features = features[:, -1]
            elif self.pool == "first":
                features = features[:, 0]
            else:
                features = features.mean(dim=1)
        return self.head(features)


class PositionDecoder(nn.Module):
    """One output per position: ``(B, L, D)`` -> ``(B, L, out_features)``."""

    def __init__(
        self, in_features: int, out_features: int, hidden_dim: int | None = None, **mlp
    ) -> None:
        super().__init__()
        self.head = head(in_features, out_features, hidden_dim, **mlp)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() != 3:
            raise ValueError(
                "a per-position task needs (batch, length, features) from a sequence model, "
                f"got shape {tuple(features.shape)}"
            )
        return self.head(features)
