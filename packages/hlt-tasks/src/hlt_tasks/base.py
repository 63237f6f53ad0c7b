"""The Task contract: how a model's features are read for one kind of target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn
from torchmetrics import MetricCollection

from hlt_tasks.outputs import MemberMean, Values

Batch = Mapping[str, torch.Tensor]
"""A batch: ``inputs`` and ``targets`` tensors, plus optional extras such as ``mask``.
Restated from ``hlt_data.batch`` (its owner), which hlt-tasks may not import, with its
keys; tests/test_architecture.py checks that the restatements agree."""
INPUTS = "inputs"
TARGETS = "targets"
MASK = "mask"


class Task:
    """Base class of every task.

    ``decoder_cls`` is a class attribute: the decoder architecture is chosen by the task
    type, while its width comes from the model (``in_features``) and from the task's own
    ``output_size`` (for example the number of classes). Subclasses implement ``loss``,
    ``metrics`` and ``predict``; ``metric_inputs`` says what the metrics are fed.

    ``target_type`` tells the data how to read targets: ``class`` (class indices through
    a label vocabulary), ``real`` (numbers, even whole ones) or ``none`` (no targets).

    ``output_transform`` turns decoder outputs into what a user reads (probabilities,
    values in original units); ``output_kind`` names what it gives: ``probabilities`` (one
    per class, last dimension) or ``values``. The export and ``hlt predict`` use both.
    ``member_combiner`` reads an ensemble model's members as one output (hlt-core's
    ``EnsembleTask`` promise).
    """

    decoder_cls: ClassVar[type[nn.Module]]
    target_type: ClassVar[str] = "auto"
    output_kind: ClassVar[str] = "values"

    def __init__(self, output_size: int, decoder: Mapping[str, Any] | None = None) -> None:
        if output_size < 1:
            raise ValueError(f"{type(self).__name__} needs output_size >= 1, got {output_size}")
        self.output_size = output_size
        self.decoder_kwargs = dict(decoder or {})

    def build_decoder(self, in_features: int) -> nn.Module:
        """The decoder head for a model whose features are ``in_features`` wide."""
        return self.decoder_cls(in_features, self.output_size, **self.decoder_kwargs)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, prefix: str) -> MetricCollection:
        """A fresh metric collection whose names start with ``prefix`` (e.g. ``val/``)."""
        raise NotImplementedError

    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(preds, target)`` as the metrics expect them; by default the raw outputs."""
        return outputs, batch[TARGETS]

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def output_transform(self) -> nn.Module:
        """Decoder outputs -> what a user reads; by default the values as they are."""
        return Values()

    def member_combiner(self) -> nn.Module:
        """An ensemble's member outputs ``(batch, members, ...)`` -> its outputs
        ``(batch, ...)``, still decoder outputs; by default their mean."""
        return MemberMean()
