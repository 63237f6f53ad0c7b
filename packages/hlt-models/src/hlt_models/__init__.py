"""Pure PyTorch models for hlt (torch only; no Lightning, no Hydra)."""

from hlt_models.embeddings import (
    LinearEmbedding,
    PositionalEmbedding,
    TableInputs,
    TokenEmbedding,
)
from hlt_models.export import (
    ExportMismatchError,
    ExportTargetError,
    load_exported,
)
from hlt_models.hyena import Hyena, HyenaOperator
from hlt_models.mamba import Mamba
from hlt_models.mlp import MLP
from hlt_models.parameters import num_parameters
from hlt_models.sequence import SequenceModel
from hlt_models.tabm import TabM
from hlt_models.transformer import SelfAttention, Transformer

__all__ = [
    "MLP",
    "ExportMismatchError",
    "ExportTargetError",
    "Hyena",
    "HyenaOperator",
    "LinearEmbedding",
    "Mamba",
    "PositionalEmbedding",
    "SelfAttention",
    "SequenceModel",
    "TabM",
    "TableInputs",
    "TokenEmbedding",
    "Transformer",
    "load_exported",
    "num_parameters",
]
