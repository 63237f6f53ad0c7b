"""What hlt-core reads of the components it composes, written once.

hlt-core may not import hlt-models, hlt-tasks or hlt-data (the import-linter contracts in
the root ``pyproject.toml``); it knows them only by the promises below, and mypy checks
every place in core that reads one. A component that keeps these promises plugs in,
whichever package it comes from; ``hlt_core.testing`` holds the smallest ones that do.

The batch structure is owned by ``hlt_data.batch`` and restated here read-only (a test in
``tests/test_architecture.py`` checks the two agree).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:  # the config-only commands (`--cfg job`) import this without torch
    import torch
    from torch import nn

Batch = Mapping[str, "torch.Tensor"]
INPUTS = "inputs"  # what the model reads
TARGETS = "targets"  # what the task's loss and metrics read
MASK = "mask"  # True at the real positions of padded sequences


@runtime_checkable
class Model(Protocol):
    """A ``torch.nn.Module`` mapping ``batch[INPUTS]`` to features; ``out_features`` is
    their width, read to build the task's decoder. Its data-derived arguments
    (``input_dim``, ``vocab_size``, ``max_len``) come from the config, where core reads
    them (``hlt_core.training.module.check_model_fits_data``)."""

    out_features: int

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class EnsembleModel(Protocol):
    """A ``Model`` whose features hold ``members`` ensemble members (TabM's):
    ``(batch, members, out_features)``. Core applies the task's decoder to each member,
    trains each on its own loss (their mean is the training loss) and reads the members'
    outputs combined by the task (``EnsembleTask``) everywhere else: validation and test
    loss and metrics, predictions, the export."""

    out_features: int
    members: int

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor: ...


class Metrics(Protocol):
    """A task's metrics for one split: a torchmetrics ``MetricCollection``."""

    def update(self, *args: Any) -> None: ...
    def compute(self) -> dict[str, Any]: ...
    def reset(self) -> None: ...


@runtime_checkable
class ResumableMetrics(Protocol):
    """``Metrics`` whose state a checkpoint can carry (``hlt_tasks.metrics.Metrics``), so
    that a run resumed mid-epoch logs that epoch's train metrics over all its batches.
    ``epoch_state`` gives tensors and lists of tensors only (checkpoints load without
    pickle); ``load_epoch_state`` raises ``ValueError`` on a state of other metrics."""

    def epoch_state(self) -> dict[str, Any]: ...
    def load_epoch_state(self, state: Mapping[str, Any]) -> None: ...


class Task(Protocol):
    """How outputs are read. ``target_type`` tells the data how to read targets
    (``class``, ``real``, ``none`` or ``auto``: resolved into ``data.target_type``);
    ``output_kind`` names what ``output_transform`` gives (``probabilities`` in the order
    of the data's ``labels``, or ``values``), written into predictions and exports."""

    target_type: ClassVar[str]
    output_kind: ClassVar[str]

    def build_decoder(self, in_features: int) -> nn.Module: ...
    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor: ...
    def metrics(self, prefix: str) -> Metrics: ...
    def metric_inputs(
        self, outputs: torch.Tensor, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]: ...
    def output_transform(self) -> nn.Module: ...


@runtime_checkable
class EnsembleTask(Protocol):
    """A ``Task`` that can read an ``EnsembleModel``: ``member_combiner`` is a module
    mapping ``(batch, members, ...)`` decoder outputs to ``(batch, ...)`` outputs of the
    ensemble, still decoder outputs (mean class probabilities as logits, mean values), so
    that its loss, metrics and output transform read them unchanged."""

    def member_combiner(self) -> nn.Module: ...


@runtime_checkable
class DataModule(Protocol):
    """A ``LightningDataModule`` that states what the data is.

    ``dims`` are the sizes models and tasks read (``${data.dims.*}``); ``data_facts`` is
    everything a checkpoint and an export carry so that new inputs are read as training
    read them: the ``dims`` and the state fitted on the training split (feature and
    target statistics, label names, how files were read). ``row_ids`` names each row of a
    split in prediction order (None where rows have no names), ``true_targets`` gives
    their targets as a predictions table writes them (None where there are none, or
    several per row), and ``example_batch`` is
    one batch of the training split, read without a loader (model summary, export).
    """

    @property
    def dims(self) -> Mapping[str, Any]: ...
    @property
    def data_facts(self) -> Mapping[str, Any]: ...
    def row_ids(self, split: str) -> Sequence[tuple[str, str]] | None: ...
    def true_targets(self, split: str) -> Sequence[str] | None: ...
    def example_batch(self) -> Batch: ...
