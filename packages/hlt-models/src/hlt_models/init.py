"""Weight initialisation shared by the sequence models.

Small normal weights keep the residual stream's scale stable at the start; output
projections of residual branches are further scaled by ``1/sqrt(2 * depth)`` so that
the variance of the sum over blocks does not grow with depth (GPT-2 style).
"""

from __future__ import annotations

import math

from torch import nn

STD = 0.02


def init_weights(module: nn.Module) -> None:
    """Normal(0, 0.02) for Linear and Embedding weights, zero biases, unit norms."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=STD)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def scale_residual_outputs(blocks: nn.Module, depth: int) -> None:
    """Shrink every ``out_proj`` Linear (the end of a residual branch) by depth."""
    for name, module in blocks.named_modules():
        if name.endswith("out_proj") and isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=STD / math.sqrt(2 * depth))
