"""hlt-tasks' metrics: accuracy as torchmetrics' micro accuracy, counted so that F1's update
serves it; updates gathered and applied several batches at a time, with the values of one
update per batch."""

import io

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy

from hlt_tasks import (
    ClassificationTask,
    OrdinalRegressionTask,
    RegressionTask,
    TokenClassificationTask,
)
from hlt_tasks.base import INPUTS, MASK, TARGETS
from hlt_tasks.metrics import GATHER_UPDATES, Accuracy, Metrics


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
    metrics.compute()  # applies the update where it was gathered
    assert any({"acc", "f1"} <= set(group) for group in metrics.compute_groups.values())


def _batches(task, count: int, gen: torch.Generator):
    """``count`` batches of decoder outputs and targets for ``task``, of varying sizes."""
    for i in range(count):
        rows = 5 + i % 4
        if isinstance(task, TokenClassificationTask):  # padded sequences of 6 positions
            targets = torch.randint(0, 3, (rows, 6), generator=gen)
            mask = torch.rand(rows, 6, generator=gen) > 0.3
            yield torch.randn(rows, 6, 3, generator=gen), {TARGETS: targets, MASK: mask}
        elif isinstance(task, RegressionTask):
            yield torch.randn(rows, 1, generator=gen), {TARGETS: torch.randn(rows, generator=gen)}
        else:
            classes = task.num_classes
            targets = torch.randint(0, classes, (rows,), generator=gen)
            yield torch.randn(rows, classes, generator=gen) * 3, {TARGETS: targets}


@pytest.mark.parametrize(
    "task",
    [ClassificationTask(2), ClassificationTask(4), TokenClassificationTask(3), RegressionTask()],
    ids=["binary-with-auroc", "classification", "token", "regression"],
)
def test_gathered_updates_give_the_values_of_one_update_per_batch(task):
    gathered, per_batch = task.metrics("train/"), task.metrics("train/")
    assert gathered.gathers == (not isinstance(task, RegressionTask))  # float sums: per batch
    per_batch.gathers = False
    updates = 2 * GATHER_UPDATES + 3  # two full gathers and a rest applied by compute
    for outputs, batch in _batches(task, updates, torch.Generator().manual_seed(0)):
        gathered.update(*task.metric_inputs(outputs, batch))
        per_batch.update(*task.metric_inputs(outputs, batch))
    first = next(iter(gathered.values(copy_state=False)))
    assert first.update_count == (2 if gathered.gathers else updates)
    values, expected = gathered.compute(), per_batch.compute()
    assert values.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(values[key], value), key  # bit for bit
    old, new = _batches(task, 2, torch.Generator().manual_seed(2))
    gathered.update(*task.metric_inputs(*old))
    gathered.reset()  # drops the gathered inputs with the states
    fresh = task.metrics("train/")
    for metrics in (gathered, fresh):
        metrics.update(*task.metric_inputs(*new))
    assert all(torch.equal(v, fresh.compute()[k]) for k, v in gathered.compute().items())


def test_inputs_of_another_shape_apply_what_was_gathered_first():
    metrics = Metrics({"acc": MulticlassAccuracy(3, average="micro")}, prefix="")
    per_batch = Metrics({"acc": MulticlassAccuracy(3, average="micro")}, prefix="")
    per_batch.gathers = False
    gen = torch.Generator().manual_seed(1)
    for length in (4, 4, 5):  # (rows, classes, length) scores: the last cannot be appended
        inputs = torch.rand(2, 3, length, generator=gen), torch.randint(0, 3, (2, length))
        metrics.update(*inputs)
        per_batch.update(*inputs)
    assert next(iter(metrics.values(copy_state=False))).update_count == 1
    assert torch.equal(metrics.compute()["acc"], per_batch.compute()["acc"])


@pytest.mark.parametrize(
    "task",
    [ClassificationTask(2), ClassificationTask(4), TokenClassificationTask(3), RegressionTask()],
    ids=["binary-with-auroc", "classification", "token", "regression"],
)
def test_a_state_carried_over_goes_on_to_the_values_of_one_uninterrupted_epoch(task):
    # the first metrics stop after 7 batches (some still gathered), saved as a checkpoint
    # saves them (torch.save, read back without pickle); fresh metrics go on from there
    straight, first, resumed = (task.metrics("train/") for _ in range(3))
    batches = list(_batches(task, 12, torch.Generator().manual_seed(1)))
    for i, (outputs, batch) in enumerate(batches):
        straight.update(*task.metric_inputs(outputs, batch))
        (first if i < 7 else resumed).update(*task.metric_inputs(outputs, batch))
        if i == 6:
            buffer = io.BytesIO()
            torch.save(first.epoch_state(), buffer)
            buffer.seek(0)
            resumed.load_epoch_state(torch.load(buffer, weights_only=True))
    values, expected = resumed.compute(), straight.compute()
    assert values.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(values[key], value), key


def test_a_state_of_other_metrics_is_refused_naming_what_differs():
    saved = ClassificationTask(3).metrics("train/")
    saved.update(torch.rand(4, 3).softmax(-1), torch.tensor([0, 1, 2, 1]))
    state = saved.epoch_state()
    with pytest.raises(ValueError, match="train metrics"):
        ClassificationTask(3).metrics("train/").load_epoch_state({"acc": state["acc"]})
    with pytest.raises(ValueError, match=r"the state acc\.tp is not one"):
        ClassificationTask(4).metrics("train/").load_epoch_state(state)  # 3 classes, not 4
    state["f1"] = {key: "1" for key in state["f1"]}
    with pytest.raises(ValueError, match=r"the state f1\.\w+ is not one"):
        ClassificationTask(3).metrics("train/").load_epoch_state(state)
