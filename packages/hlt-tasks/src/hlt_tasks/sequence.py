"""Per-position tasks on ``(batch, length, features)``: token classification and
next-token language modelling. Ignored positions carry ``IGNORE`` (-100) as target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from hlt_tasks.base import INPUTS, MASK, TARGETS, Batch, Task
from hlt_tasks.decoders import PositionDecoder
from hlt_tasks.metrics import Accuracy, Metrics
from hlt_tasks.outputs import MemberMeanProbabilities, Probabilities

IGNORE = -100


class TokenPerplexity(Metric):
    """exp(mean negative log-likelihood) over the counted tokens of the whole epoch.

    Takes flat ``(N, vocab)`` logits and ``(N,)`` targets; targets equal to
    ``ignore_index`` do not count.
    """

    full_state_update = False
    higher_is_better = False

    nll: torch.Tensor  # metric states
    count: torch.Tensor

    def __init__(self, ignore_index: int = IGNORE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_index = ignore_index
        self.add_state("nll", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        nll = F.cross_entropy(
            logits.float(), target, ignore_index=self.ignore_index, reduction="sum"
        )
        self.nll += nll.double()
        self.count += (target != self.ignore_index).sum()

    def compute(self) -> torch.Tensor:
        return torch.exp(self.nll / self.count.clamp(min=1)).float()


def masked_targets(targets: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``targets`` with positions where ``mask`` is 0 set to ``IGNORE``."""
    targets = targets.long()
    if mask is None:
        return targets
    return targets.masked_fill(mask == 0, IGNORE)


class _PerPositionTask(Task):
    decoder_cls = PositionDecoder
    target_type = "class"
    output_kind = "probabilities"

    def __init__(self, num_classes: int, decoder: Mapping[str, Any] | None = None) -> None:
        if num_classes < 2:
            raise ValueError(f"{type(self).__name__} needs num_classes >= 2, got {num_classes}")
        super().__init__(output_size=num_classes, decoder=decoder)
        self.num_classes = num_classes

    def pairs(self, outputs: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat ``(N, classes)`` logits and ``(N,)`` targets (``IGNORE`` where not counted)."""
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Mean cross-entropy over the counted positions; 0 (not NaN) when none counts,
        as in a batch of windows that are all N."""
        logits, target = self.pairs(outputs, batch)
        total = F.cross_entropy(logits.float(), target, ignore_index=IGNORE, reduction="sum")
        return total / (target != IGNORE).sum().clamp(min=1)

    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, target = self.pairs(outputs, batch)
        return logits.float(), target

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=-1)

    def output_transform(self) -> nn.Module:
        return Probabilities()

    def member_combiner(self) -> nn.Module:
        return MemberMeanProbabilities()


class TokenClassificationTask(_PerPositionTask):
    """A class per position: ``targets`` ``(B, L)`` with -100 (or ``mask`` 0) ignored."""

    def pairs(self, outputs: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        target = masked_targets(batch[TARGETS], batch.get(MASK))
        if target.shape != outputs.shape[:-1]:
            raise ValueError(
                f"per-position targets of shape {tuple(target.shape)} do not match outputs "
                f"{tuple(outputs.shape[:-1])}; one target per example needs task=classification"
            )
        return outputs.reshape(-1, self.num_classes), target.reshape(-1)

    def metrics(self, prefix: str) -> Metrics:
        return Metrics(
            {
                "acc": Accuracy(self.num_classes, ignore_index=IGNORE),
                "f1": MulticlassF1Score(self.num_classes, average="macro", ignore_index=IGNORE),
            },
            prefix=prefix,
        )


class LanguageModelTask(_PerPositionTask):
    """Next-token prediction: outputs at t predict ``inputs`` at t+1.

    The task shifts by itself, so any token batch serves (``targets`` is not read).
    Position t+1 counts only where ``mask`` (if present) is 1 there. Metrics:
    perplexity and next-token accuracy.
    """

    target_type = "none"

    def __init__(self, vocab_size: int, decoder: Mapping[str, Any] | None = None) -> None:
        super().__init__(num_classes=vocab_size, decoder=decoder)
        self.vocab_size = vocab_size

    def pairs(self, outputs: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = batch[INPUTS]
        mask = batch.get(MASK)
        target = masked_targets(inputs[:, 1:], None if mask is None else mask[:, 1:])
        logits = outputs[:, :-1]
        return logits.reshape(-1, self.vocab_size), target.reshape(-1)

    def metrics(self, prefix: str) -> Metrics:
        return Metrics(
            {
                "ppl": TokenPerplexity(),
                "acc": MulticlassAccuracy(self.vocab_size, average="micro", ignore_index=IGNORE),
            },
            prefix=prefix,
        )


class AnswerLanguageModelTask(LanguageModelTask):
    """safari's objective on synthetic tasks: next-token loss on every position of a
    sequence whose last ``answer_length`` tokens are the answer, and the metrics (accuracy)
    on the answer alone, predicted from the positions just before it.

    Training sees every predictable token (values after a repeated key, the copied token),
    as in the papers' numbers; the score is that of ``task=classification`` on the same
    question, so the two objectives compare on one test set.
    """

    def __init__(
        self, vocab_size: int, answer_length: int = 1, decoder: Mapping[str, Any] | None = None
    ) -> None:
        if answer_length < 1:
            raise ValueError(
                f"AnswerLanguageModelTask needs answer_length >= 1, got {answer_length}"
            )
        super().__init__(vocab_size=vocab_size, decoder=decoder)
        self.answer_length = answer_length

    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = outputs[:, -self.answer_length - 1 : -1]
        answer = batch[INPUTS][:, -self.answer_length :]
        return logits.reshape(-1, self.vocab_size).float(), answer.reshape(-1).long()

    def metrics(self, prefix: str) -> Metrics:
        return Metrics({"acc": MulticlassAccuracy(self.vocab_size, average="micro")}, prefix=prefix)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """The answer tokens, ``(B, answer_length)``."""
        return outputs[:, -self.answer_length - 1 : -1].argmax(dim=-1)
