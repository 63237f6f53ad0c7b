"""A pre-norm Transformer on ``scaled_dot_product_attention`` (fused kernels when available)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hlt_models.sequence import ResidualBlock, SequenceModel


class SelfAttention(nn.Module):
    """Multi-head self-attention; ``causal`` masks the future inside the fused kernel."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, causal: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(
                f"attention needs dim divisible by heads, got dim={dim}, heads={heads}"
            )
        self.heads = heads
        self.causal = causal
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, length, head_dim)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=self.causal, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(y.transpose(1, 2).reshape(batch, length, dim))


class Transformer(SequenceModel):
    """Token or vector sequences -> ``(batch, length, dim)`` features.

    ``causal=True`` (default) lets position t see only positions <= t, as language
    modelling needs; ``causal=False`` gives a bidirectional encoder.
    """

    def __init__(
        self,
        vocab_size: int | None = None,
        input_dim: int | None = None,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        causal: bool = True,
        max_len: int = 2048,
        positional: str | None = "learned",
        checkpoint_activations: bool = False,
    ) -> None:
        blocks = [
            ResidualBlock(SelfAttention(dim, heads, dropout, causal), dim, mlp_ratio, dropout)
            for _ in range(depth)
        ]
        super().__init__(
            blocks, dim, vocab_size, input_dim, max_len, positional, dropout, checkpoint_activations
        )
