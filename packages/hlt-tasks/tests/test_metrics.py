"""hlt-tasks' accuracy: torchmetrics' micro accuracy, counted so that F1's update serves it."""

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy

from hlt_tasks import ClassificationTask, OrdinalRegressionTask, TokenClassificationTask
from hlt_tasks.base import INPUTS, TARGETS
from hlt_tasks.metrics import Accuracy


@pytest.mark.parametrize("ignore_index", [None, -100])
def test_accuracy_equals_torchmetrics_micro_accuracy(ignore_index):
    gen = torch.Generator().manual_seed(0)
    ours = Accuracy(5, ignore_index=ignore_index)
    micro = MulticlassAccuracy(5, average="micro", ignore_index=ignore_index)
    for _ in range(3):
        probs = torch.rand(40, 5, generator=gen).softmax(-1)
        targets = torch.randint(0, 5, (40,), generator=gen)
        if ignore_index is not None:
            targets[::6] = ignore_index
        ours.update(probs, targets)
        micro.update(probs, targets)
    assert torch.equal(ours.compute(), micro.compute())
    assert Accuracy(3).compute().item() == 0.0  # nothing counted yet


@pytest.mark.parametrize(
    "task",
    [ClassificationTask(3), OrdinalRegressionTask(3), TokenClassificationTask(3)],
    ids=["classification", "ordinal", "token"],
)
def test_accuracy_and_f1_are_updated_as_one(task):
    metrics = task.metrics("val/")
    targets = torch.tensor([[0, 1, 2, 2, 1, 0]])
    features = torch.randn(1, 6, 4)
    if not isinstance(task, TokenClassificationTask):  # one target per example
        features, targets = features[0], targets[0]
    outputs = task.build_decoder(4)(features)
    metrics.update(*task.metric_inputs(outputs, {INPUTS: features, TARGETS: targets}))
    assert any({"acc", "f1"} <= set(group) for group in metrics.compute_groups.values())
