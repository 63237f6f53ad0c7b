import pytest
import torch

from hlt_tasks import ClassificationTask, LinearDecoder, RegressionTask, Task


def test_decoder_cls_is_a_class_attribute_shared_by_tasks():
    assert ClassificationTask.decoder_cls is LinearDecoder
    assert RegressionTask.decoder_cls is LinearDecoder
    assert "decoder_cls" not in vars(ClassificationTask(num_classes=3))


def test_classification_builds_decoder_for_model_width():
    task = ClassificationTask(num_classes=5)
    decoder = task.build_decoder(in_features=12)
    assert decoder(torch.randn(4, 12)).shape == (4, 5)


def test_classification_loss_and_metrics():
    task = ClassificationTask(num_classes=3)
    targets = torch.tensor([0, 1, 2, 1])
    perfect = torch.nn.functional.one_hot(targets, 3).float() * 10
    batch = {"inputs": torch.zeros(4, 1), "targets": targets}
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


def test_regression_loss_and_metrics():
    task = RegressionTask(output_dim=1)
    targets = torch.tensor([1.0, 2.0, 3.0])
    outputs = torch.tensor([[1.0], [2.0], [5.0]])
    batch = {"inputs": torch.zeros(3, 1), "targets": targets}
    assert task.loss(outputs, batch).item() == pytest.approx(4 / 3)
    metrics = task.metrics("test/")
    metrics.update(*task.metric_inputs(outputs, batch))
    values = metrics.compute()
    assert values["test/mae"].item() == pytest.approx(2 / 3)
    assert values["test/mse"].item() == pytest.approx(4 / 3)


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="num_classes >= 2, got 1"):
        ClassificationTask(num_classes=1)
    with pytest.raises(ValueError, match="out_features >= 1, got 0"):
        RegressionTask(output_dim=0)


def test_base_task_methods_must_be_overridden():
    class Half(Task):
        decoder_cls = LinearDecoder

    with pytest.raises(NotImplementedError):
        Half(out_features=2).loss(torch.zeros(1, 2), {"targets": torch.zeros(1)})
