"""The sequence model: embedding -> backbone -> final norm, and the shared blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from hlt_models.embeddings import PositionalEmbedding, build_embedding
from hlt_models.init import init_weights, scale_residual_outputs


class FeedForward(nn.Module):
    """The position-wise MLP of a residual block."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.in_proj = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.out_proj = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.out_proj(self.act(self.in_proj(x))))


class ResidualBlock(nn.Module):
    """Pre-norm block: ``x + mixer(norm(x))`` then ``x + mlp(norm(x))``.

    The mixer (attention, Hyena, ...) is the only part that moves information between
    positions; everything else is position-wise, so the mixer alone decides causality.
    """

    def __init__(self, mixer: nn.Module, dim: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.mixer = mixer
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, mlp_ratio, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.mixer(self.norm1(x)))
        return x + self.mlp(self.norm2(x))


class SequenceModel(nn.Module):
    """Maps ``(batch, length)`` tokens or ``(batch, length, input_dim)`` vectors to
    ``(batch, length, dim)`` features: embedding, optional positions, dropout, a stack of
    residual blocks and a final LayerNorm.

    Subclasses build ``blocks`` from flat keyword arguments so that a model is rebuilt
    from its config alone (see ``hlt_models.export``).

    ``checkpoint_activations`` keeps only each block's input while training and runs the
    block again in the backward pass (``torch.utils.checkpoint``, non-reentrant): memory
    for activations grows with one block instead of all of them, for about a third more
    compute. Long contexts (64k bases and more) fit that would not otherwise.
    """

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        dim: int,
        vocab_size: int | None = None,
        input_dim: int | None = None,
        max_len: int = 2048,
        positional: str | None = "learned",
        dropout: float = 0.0,
        checkpoint_activations: bool = False,
    ) -> None:
        super().__init__()
        if dim < 1 or not blocks:
            raise ValueError(f"a sequence model needs dim >= 1 and depth >= 1, got dim={dim}")
        self.embedding = build_embedding(dim, vocab_size=vocab_size, input_dim=input_dim)
        self.positional = PositionalEmbedding(dim, max_len, positional) if positional else None
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim)
        self.vocab_size = vocab_size
        self.input_dim = input_dim
        self.max_len = max_len
        self.out_features = dim
        self.checkpoint_activations = checkpoint_activations
        self.apply(init_weights)
        scale_residual_outputs(self.blocks, len(blocks))
        self.reset_own_inits()

    def reset_own_inits(self) -> None:
        """Re-run the initialisation of modules (token embeddings, Hyena mixers) that
        choose their own, which the generic pass overwrote."""
        for module in self.modules():
            reset = getattr(module, "reset_parameters_after_init", None)
            if module is not self and callable(reset):
                reset()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.embedding(inputs)
        if self.positional is not None:
            x = self.positional(x)
        x = self.drop(x)
        recompute = self.checkpoint_activations and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=False) if recompute else block(x)
        return self.norm(x)
