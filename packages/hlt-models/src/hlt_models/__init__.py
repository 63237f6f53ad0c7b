"""Pure PyTorch models for hlt (torch only; no Lightning, no Hydra)."""

from hlt_models.mlp import MLP

__all__ = ["MLP"]
