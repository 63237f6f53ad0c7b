"""The task's decoder for a model that returns ensemble members (``EnsembleModel``).

An efficient ensemble (TabM) trains each member on its own loss and predicts with the
members' combined outputs. The task still owns the one decoder: ``MemberDecoder`` applies
it to every member and combines their outputs with the task's ``member_combiner``, so
everything that reads decoder outputs (the loss and metrics of validation and test,
predictions, the exported predictor) reads the ensemble's, while ``TaskModule`` reads
``members`` to train each member on its own loss.
"""

from __future__ import annotations

import torch
from torch import nn

from hlt_core.contracts import Batch, EnsembleModel, EnsembleTask, Task
from hlt_core.errors import UserError


class MemberDecoder(nn.Module):
    """``(batch, members, ...)`` features -> ``(batch, ...)`` outputs: ``decoder`` on each
    member (the same weights), then ``combiner``; ``members`` gives the outputs before it.
    A padded sequence's ``mask`` (``(batch, length)``, True at real positions) reaches the
    decoder for every member, as it does for a single model, so pooling never reads
    padding; the task's loss reads the batch's mask itself."""

    def __init__(self, decoder: nn.Module, combiner: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder
        self.combiner = combiner

    def members(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Every member's outputs, ``(batch, members, ...)``."""
        flat = features.flatten(0, 1)  # member i of row b is row b * members + i
        if mask is None:
            outputs = self.decoder(flat)
        else:
            outputs = self.decoder(flat, mask=mask.repeat_interleave(features.shape[1], dim=0))
        return outputs.unflatten(0, features.shape[:2])

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.combiner(self.members(features, mask))


def build_decoder(model: nn.Module, task: Task, in_features: int) -> nn.Module:
    """The task's decoder for ``model``: wrapped in ``MemberDecoder`` for an ensemble."""
    decoder = task.build_decoder(in_features)
    if not isinstance(model, EnsembleModel):
        return decoder
    if not isinstance(task, EnsembleTask):
        raise UserError(
            f"model {type(model).__name__} returns {model.members} ensemble members but task "
            f"{type(task).__name__} has no `member_combiner` to combine their outputs"
        )
    return MemberDecoder(decoder, task.member_combiner())


def member_loss(task: Task, member_outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The mean over members of each member's own loss (each is trained on its own)."""
    losses = [task.loss(member_outputs[:, i], batch) for i in range(member_outputs.shape[1])]
    return torch.stack(losses).mean()
