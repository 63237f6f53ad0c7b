"""Padding is never scored: appending padded positions to a batch changes no loss, no
metric and no pooled feature, for every sequence task and pooling mode."""

import pytest
import torch
from torch import nn

from hlt_tasks import ClassificationTask, LanguageModelTask, TokenClassificationTask
from hlt_tasks.base import INPUTS, MASK, TARGETS


class CausalMean(nn.Module):
    """A tiny causal model: position t sees the mean embedding of tokens 0..t."""

    def __init__(self, vocab: int = 7, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens).cumsum(dim=1)
        return x / torch.arange(1, tokens.shape[1] + 1).view(1, -1, 1)


def batches(extra: int) -> tuple[dict, dict]:
    """The same sequences (lengths 5, 9, 3) with 9 + ``extra`` positions, padded with 0."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5, 9, 3])
    mask = torch.arange(9 + extra) < lengths[:, None]
    tokens = torch.randint(2, 7, (3, 9), generator=generator)
    tokens = torch.cat([tokens, torch.zeros(3, extra, dtype=torch.long)], dim=1)
    tokens = tokens.masked_fill(~mask, 0)
    per_position = torch.randint(0, 3, (3, 9), generator=generator)
    per_position = torch.cat(
        [per_position, torch.randint(0, 3, (3, extra), generator=generator)], 1
    )
    return {INPUTS: tokens, MASK: mask, TARGETS: torch.tensor([0, 2, 1])}, {
        INPUTS: tokens,
        MASK: mask,
        TARGETS: per_position,
    }


def scores(task, batch: dict, model: nn.Module) -> dict[str, float]:
    decoder = task.build_decoder(8)
    torch.manual_seed(1)
    for p in decoder.parameters():
        nn.init.normal_(p)
    outputs = decoder(model(batch[INPUTS]), mask=batch[MASK])
    metrics = task.metrics("m/")
    metrics.update(*task.metric_inputs(outputs, batch))
    return {"loss": float(task.loss(outputs, batch))} | {
        k: float(v) for k, v in metrics.compute().items()
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda: ClassificationTask(3, decoder={"pool": "last"}),
        lambda: ClassificationTask(3, decoder={"pool": "mean"}),
        lambda: LanguageModelTask(7),
    ],
    ids=["classification-last", "classification-mean", "language-model"],
)
def test_appending_padding_changes_no_loss_or_metric(make):
    model = CausalMean()
    short, _ = batches(extra=0)
    long, _ = batches(extra=6)
    # the same sequences: trim the long batch's extra padding to compare
    assert torch.equal(long[INPUTS][:, :9], short[INPUTS])
    got, want = scores(make(), long, model), scores(make(), short, model)
    assert got == pytest.approx(want, rel=1e-6, abs=1e-7), (got, want)


def test_token_classification_ignores_padded_positions():
    model = CausalMean()
    _, short = batches(extra=0)
    _, long = batches(extra=6)
    got = scores(TokenClassificationTask(3), long, model)
    want = scores(TokenClassificationTask(3), short, model)
    assert got == pytest.approx(want, rel=1e-6)


def test_without_the_mask_padding_would_count():
    """The check above can fail: the same long batch scored without its mask differs."""
    model, task = CausalMean(), LanguageModelTask(7)
    long, _ = batches(extra=6)
    unmasked = {INPUTS: long[INPUTS], MASK: torch.ones_like(long[MASK])}
    assert scores(task, unmasked, model)["m/ppl"] != pytest.approx(
        scores(task, long, model)["m/ppl"]
    )
