"""Decoder heads. They live apart from tasks so that several tasks can share one.

Every decoder takes ``(in_features, out_features, **options)``; the options come from a
task config's ``decoder:`` node (for example ``task.decoder.pool=mean``). Decoders of
sequence features take the batch's padding ``mask`` (True at real positions) as well.
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


def pool_features(features: torch.Tensor, pool: str, mask: torch.Tensor | None) -> torch.Tensor:
    """``(B, L, D)`` -> ``(B, D)``; with a padding ``mask`` (B, L), True at real
    positions, "last" reads each row's last real position and "mean" averages real ones."""
    if pool == "first":
        return features[:, 0]
    if mask is None:
        return features[:, -1] if pool == "last" else features.mean(dim=1)
    mask = mask.to(torch.bool)
    if pool == "last":
        last = (mask.long().sum(dim=1) - 1).clamp(min=0)
        return features[torch.arange(features.shape[0], device=features.device), last]
    weights = mask.unsqueeze(-1).to(features.dtype)
    return (features * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


class PooledDecoder(nn.Module):
    """One output per example: ``(B, L, D)`` features are pooled to ``(B, D)`` first.

    ``pool="last"`` reads the last position (what a causal model has seen everything
    at), ``"mean"`` averages positions, ``"first"`` reads position 0 (a CLS token);
    padding (``mask`` False) is never read. ``(B, D)`` features (an MLP's) pass
    straight to the head, so the same task serves fixed-width and sequence models.
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

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if features.dim() == 3:
            features = pool_features(features, self.pool, mask)
        return self.head(features)


class PositionDecoder(nn.Module):
    """One output per position: ``(B, L, D)`` -> ``(B, L, out_features)``; padded
    positions get outputs too, and the task leaves them out of loss and metrics."""

    def __init__(
        self, in_features: int, out_features: int, hidden_dim: int | None = None, **mlp
    ) -> None:
        super().__init__()
        self.head = head(in_features, out_features, hidden_dim, **mlp)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if features.dim() != 3:
            raise ValueError(
                "a per-position task needs (batch, length, features) from a sequence model, "
                f"got shape {tuple(features.shape)}"
            )
        return self.head(features)
