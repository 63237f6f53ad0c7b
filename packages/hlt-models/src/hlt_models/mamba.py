"""Optional Mamba backbone: a thin wrapper over ``mamba-ssm`` (CUDA GPUs only).

``mamba-ssm`` is imported when the model is built, never when hlt-models is imported, so
the package works without it and the config ``model=mamba`` fails with an install hint.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from hlt_models.sequence import ResidualBlock, SequenceModel

INSTALL_HINT = "model=mamba needs mamba-ssm: pip install mamba-ssm (CUDA GPU only)"


def mamba_layer_cls() -> type[nn.Module]:
    """``mamba_ssm.Mamba``, or an ImportError that says how to install it."""
    try:
        module = importlib.import_module("mamba_ssm")
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return module.Mamba


class MambaMixer(nn.Module):
    """One selective-state-space layer; causal by construction."""

    def __init__(self, dim: int, d_state: int, d_conv: int, expand: int) -> None:
        super().__init__()
        self.layer = mamba_layer_cls()(d_model=dim, d_state=d_state, d_conv=d_conv, expand=expand)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class Mamba(SequenceModel):
    """Token or vector sequences -> ``(batch, length, dim)`` features with Mamba mixers."""

    def __init__(
        self,
        vocab_size: int | None = None,
        input_dim: int | None = None,
        dim: int = 128,
        depth: int = 2,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        max_len: int = 2048,
    ) -> None:
        blocks = [
            ResidualBlock(MambaMixer(dim, d_state, d_conv, expand), dim, mlp_ratio, dropout)
            for _ in range(depth)
        ]
        super().__init__(blocks, dim, vocab_size, input_dim, max_len, None, dropout)
