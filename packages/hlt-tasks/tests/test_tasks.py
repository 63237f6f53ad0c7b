import pytest
import torch

from hlt_tasks import (
    ClassificationTask,
    LinearDecoder,
    OrdinalRegressionTask,
    PooledDecoder,
    RegressionTask,
    Task,
)
from hlt_tasks.base import INPUTS, TARGETS


def test_decoder_cls_is_a_class_attribute_shared_by_tasks():
    assert ClassificationTask.decoder_cls is PooledDecoder
    assert RegressionTask.decoder_cls is PooledDecoder
    assert OrdinalRegressionTask.decoder_cls is PooledDecoder
    assert "decoder_cls" not in vars(ClassificationTask(num_classes=3))


def test_classification_builds_decoder_for_model_width():
    task = ClassificationTask(num_classes=5)
    decoder = task.build_decoder(in_features=12)
    assert decoder(torch.randn(4, 12)).shape == (4, 5)


def test_classification_loss_and_metrics():
    task = ClassificationTask(num_classes=3)
    targets = torch.tensor([0, 1, 2, 1])
    perfect = torch.nn.functional.one_hot(targets, 3).float() * 10
    batch = {INPUTS: torch.zeros(4, 1), TARGETS: targets}
    assert task.loss(perfect, batch) < 1e-3
    wrong = perfect.roll(1, dims=1)
    assert task.loss(wrong, batch) > 5
    metrics = task.metrics("val/")
    metrics.update(*task.metric_inputs(wrong, batch))
    metrics.update(*task.metric_inputs(perfect, batch))
    values = metrics.compute()
    assert set(values) == {"val/acc", "val/f1"}
    assert values["val/acc"].item() == pytest.approx(0.5)
    assert task.predict(perfect).tolist() == targets.tolist()


def test_many_class_metrics_read_logits_and_give_the_values_of_probabilities():
    # accuracy and F1 read only the top class, so the softmax (a CPU step's cost) is left
    # out for them; AUROC (two classes) still gets probabilities
    gen = torch.Generator().manual_seed(0)
    task = ClassificationTask(num_classes=10)
    logits = torch.randn(384, 10, generator=gen) * 3
    batch = {TARGETS: torch.randint(0, 10, (384,), generator=gen)}
    scores, targets = task.metric_inputs(logits, batch)
    assert torch.equal(scores, logits)
    from_logits, from_probabilities = task.metrics("val/"), task.metrics("val/")
    from_logits.update(scores, targets)
    from_probabilities.update(logits.softmax(dim=-1), targets)
    assert from_logits.compute() == from_probabilities.compute()
    binary = ClassificationTask(num_classes=2).metric_inputs(logits[:, :2], batch)[0]
    assert torch.equal(binary, logits[:, :2].softmax(dim=-1))


def test_regression_loss_and_metrics():
    task = RegressionTask(output_dim=1)
    targets = torch.tensor([1.0, 2.0, 3.0])
    outputs = torch.tensor([[1.0], [2.0], [5.0]])
    batch = {INPUTS: torch.zeros(3, 1), TARGETS: targets}
    assert task.loss(outputs, batch).item() == pytest.approx(4 / 3)
    metrics = task.metrics("test/")
    metrics.update(*task.metric_inputs(outputs, batch))
    values = metrics.compute()
    assert values["test/mae"].item() == pytest.approx(2 / 3)
    assert values["test/mse"].item() == pytest.approx(4 / 3)


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="num_classes >= 2, got 1"):
        ClassificationTask(num_classes=1)
    with pytest.raises(ValueError, match="output_size >= 1, got 0"):
        RegressionTask(output_dim=0)


def test_base_task_methods_must_be_overridden():
    class Half(Task):
        decoder_cls = LinearDecoder

    with pytest.raises(NotImplementedError):
        Half(output_size=2).loss(torch.zeros(1, 2), {TARGETS: torch.zeros(1)})


def test_binary_classification_reports_auroc():
    task = ClassificationTask(num_classes=2)
    targets = torch.tensor([0, 0, 1, 1])
    # class-1 logit margin ranks every positive above every negative, but the
    # margins are small, so argmax gets one wrong: AUROC 1, accuracy 0.75
    outputs = torch.tensor([[0.0, -0.2], [0.0, 0.1], [0.0, 0.3], [0.0, 0.4]])
    metrics = task.metrics("val/")
    metrics.update(*task.metric_inputs(outputs, {TARGETS: targets}))
    values = metrics.compute()
    assert values["val/auroc"].item() == pytest.approx(1.0)
    assert values["val/acc"].item() == pytest.approx(0.75)
    assert set(ClassificationTask(num_classes=3).metrics("val/").keys()) == {"val/acc", "val/f1"}


def test_huber_loss_is_linear_for_large_errors():
    batch = {TARGETS: torch.tensor([0.0, 0.0])}
    outputs = torch.tensor([[10.0], [0.0]])
    huber = RegressionTask(loss="huber", huber_delta=1.0).loss(outputs, batch)
    mse = RegressionTask().loss(outputs, batch)
    assert huber.item() == pytest.approx((10 - 0.5) / 2)
    assert mse.item() == pytest.approx(50.0)
    with pytest.raises(ValueError, match="loss='l1' is unknown"):
        RegressionTask(loss="l1")


def test_ordinal_targets_read_as_regression():
    task = OrdinalRegressionTask(num_classes=4)
    targets = torch.tensor([0, 1, 2, 3])
    outputs = torch.tensor([[0.2], [1.6], [2.4], [7.0]])  # predicts 0, 2, 2, 3 (clamped)
    batch = {TARGETS: targets}
    assert task.build_decoder(8)(torch.randn(4, 8)).shape == (4, 1)
    assert task.predict(outputs).tolist() == [0, 2, 2, 3]
    assert task.loss(outputs, batch).item() == pytest.approx((0.04 + 0.36 + 0.16 + 16) / 4)
    metrics = task.metrics("test/")
    metrics.update(*task.metric_inputs(outputs, batch))
    values = metrics.compute()
    assert values["test/acc"].item() == pytest.approx(0.75)
    assert values["test/mae"].item() == pytest.approx(0.25)


def test_output_transforms_give_probabilities_and_original_units():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    probabilities = ClassificationTask(3).output_transform()(logits)
    assert torch.allclose(probabilities.sum(-1), torch.ones(2))
    assert probabilities.argmax(-1).tolist() == [0, 1]
    task = RegressionTask(target_mean=10.0, target_std=2.0)
    assert task.output_transform()(torch.tensor([[1.0], [-0.5]])).tolist() == [[12.0], [9.0]]
    assert task.output_transform().state_dict() == {}  # checkpoints keep their keys


def test_member_combiners_give_the_ensembles_mean_prediction_as_decoder_outputs():
    """Classification: logits whose softmax is the mean of the members' probabilities (not
    the softmax of their mean logits); regression and ordinal: the mean of the values."""
    torch.manual_seed(0)
    members = torch.randn(5, 4, 3) * 3  # (batch, members, classes)
    task = ClassificationTask(num_classes=3)
    combined = task.member_combiner()(members)
    mean_probabilities = members.softmax(dim=-1).mean(dim=1)
    torch.testing.assert_close(task.output_transform()(combined), mean_probabilities)
    assert not torch.allclose(members.mean(dim=1).softmax(dim=-1), mean_probabilities)
    values = torch.randn(5, 4, 1)
    for task in (RegressionTask(target_mean=10.0, target_std=2.0), OrdinalRegressionTask(3)):
        torch.testing.assert_close(task.member_combiner()(values), values.mean(dim=1))
