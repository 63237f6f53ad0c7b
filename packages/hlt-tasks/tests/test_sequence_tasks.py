import math

import pytest
import torch

from hlt_tasks import (
    IGNORE,
    AnswerLanguageModelTask,
    LanguageModelTask,
    PositionDecoder,
    TokenClassificationTask,
)
from hlt_tasks.base import INPUTS, MASK, TARGETS


def one_hot_logits(tokens, vocab, scale=20.0):
    return torch.nn.functional.one_hot(tokens, vocab).float() * scale


def test_language_model_shifts_inputs_and_honours_the_mask():
    task = LanguageModelTask(vocab_size=6)
    assert task.decoder_cls is PositionDecoder
    inputs = torch.tensor([[1, 2, 3, 4, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    # outputs at t predict inputs[t+1]: a perfect model on the real tokens, garbage on padding
    next_tokens = torch.tensor([[2, 3, 4, 5, 5, 5]])
    outputs = one_hot_logits(next_tokens, 6)
    batch = {INPUTS: inputs, TARGETS: inputs, MASK: mask}
    assert task.loss(outputs, batch).item() < 1e-6
    assert task.loss(outputs, {INPUTS: inputs, TARGETS: inputs}).item() > 1.0
    metrics = task.metrics("val/")
    metrics.update(*task.metric_inputs(outputs, batch))
    values = metrics.compute()
    assert values["val/acc"].item() == pytest.approx(1.0)
    assert values["val/ppl"].item() == pytest.approx(1.0, abs=1e-6)


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    task = LanguageModelTask(vocab_size=7)
    inputs = torch.randint(7, (3, 9))
    metrics = task.metrics("test/")
    for _ in range(2):  # accumulated over batches, computed once
        metrics.update(*task.metric_inputs(torch.zeros(3, 9, 7), {INPUTS: inputs}))
    assert metrics.compute()["test/ppl"].item() == pytest.approx(7.0, rel=1e-5)
    assert task.loss(torch.zeros(3, 9, 7), {INPUTS: inputs}).item() == pytest.approx(
        math.log(7), rel=1e-5
    )


def test_token_classification_ignores_minus_100_and_masked_positions():
    task = TokenClassificationTask(num_classes=3)
    targets = torch.tensor([[0, 1, IGNORE, 2]])
    outputs = one_hot_logits(torch.tensor([[0, 1, 2, 0]]), 3)  # last position wrong
    batch = {INPUTS: torch.zeros(1, 4), TARGETS: targets}
    metrics = task.metrics("val/")
    metrics.update(*task.metric_inputs(outputs, batch))
    assert metrics.compute()["val/acc"].item() == pytest.approx(2 / 3)
    masked = {**batch, MASK: torch.tensor([[1, 1, 1, 0]])}
    assert task.loss(outputs, masked).item() < 1e-6
    assert task.loss(outputs, batch).item() > 5


def test_token_classification_names_a_shape_mismatch():
    task = TokenClassificationTask(num_classes=3)
    with pytest.raises(ValueError, match=r"targets of shape \(2,\) do not match outputs \(2, 4\)"):
        task.loss(torch.zeros(2, 4, 3), {TARGETS: torch.tensor([0, 1])})


def test_answer_language_model_trains_on_every_position_and_scores_only_the_answer():
    task = AnswerLanguageModelTask(vocab_size=6, answer_length=1)
    inputs = torch.tensor([[1, 2, 3, 4, 5]])  # 5 is the appended answer
    batch = {INPUTS: inputs, TARGETS: inputs[:, -1]}
    right = one_hot_logits(torch.tensor([[2, 3, 4, 5, 0]]), 6)  # every next token right
    wrong_answer = one_hot_logits(torch.tensor([[2, 3, 4, 0, 0]]), 6)
    wrong_question = one_hot_logits(torch.tensor([[0, 0, 0, 5, 0]]), 6)
    assert task.loss(right, batch).item() < 1e-6
    # a wrong token anywhere in the question costs loss: every position is trained
    assert task.loss(wrong_question, batch).item() > 10
    for outputs, accuracy in [(right, 1.0), (wrong_answer, 0.0), (wrong_question, 1.0)]:
        metrics = task.metrics("test/")
        metrics.update(*task.metric_inputs(outputs, batch))
        assert metrics.compute()["test/acc"].item() == pytest.approx(accuracy)
    assert torch.equal(task.predict(right), torch.tensor([[5]]))
