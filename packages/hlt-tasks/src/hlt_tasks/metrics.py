"""The tasks' metrics: torchmetrics, with the per-update cost cut where the values allow.

- ``Accuracy`` is counted the way macro F1 counts, so one update serves both: a
  ``MetricCollection`` updates metrics with equal states once per batch for all of them
  (its compute groups). torchmetrics' micro accuracy keeps totals over all classes, macro
  F1 keeps counts per class, so the two would be updated separately; counted per class,
  the accuracy shares F1's counts and its value is the same.
- ``Metrics`` gathers the updates of metrics whose state does not depend on how the rows
  are split into batches, and applies them several batches at a time: torchmetrics'
  bookkeeping per update (setting module attributes, linking the compute group's states)
  costs more than its counting on a small batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassPrecisionRecallCurve,
    MulticlassStatScores,
)
from torchmetrics.utilities import dim_zero_cat

# Metrics whose state after updates on batches A then B equals their state after one update
# on A and B's rows concatenated: per-class counts (accuracy, F1, precision, recall) and
# per-row scores kept as a list or binned counts (AUROC, average precision). The latter
# turn logits into probabilities when a batch holds a value outside [0, 1], a choice made
# per batch; the tasks hand them probabilities, where it is never made.
ROW_ADDITIVE = (MulticlassStatScores, MulticlassPrecisionRecallCurve)
GATHER_UPDATES = 16  # updates gathered at most before they are applied
GATHER_ELEMENTS = 1 << 20  # input elements gathered at most (4 MB of float32)


def _rows(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() > 0


def _same_rows(args: tuple[torch.Tensor, ...], other: tuple[torch.Tensor, ...]) -> bool:
    """Whether the rows of ``args`` can be concatenated to those of ``other``."""
    return len(args) == len(other) and all(
        a.shape[1:] == b.shape[1:] for a, b in zip(args, other, strict=True)
    )


class Accuracy(MulticlassAccuracy):
    """Micro accuracy (the share of counted examples whose top class is the target) from
    per-class counts; ``ignore_index`` targets are not counted."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        super().__init__(num_classes, average="macro", ignore_index=ignore_index)

    def compute(self) -> torch.Tensor:
        correct = dim_zero_cat(self.tp).sum()
        counted = correct + dim_zero_cat(self.fn).sum()
        return correct.float() / counted.clamp(min=1).float()


class Metrics(MetricCollection):
    """A task's metrics for one split, named ``prefix`` + key.

    When every metric is ``ROW_ADDITIVE``, ``update`` keeps references to its inputs and
    updates the metrics on them concatenated, every ``GATHER_UPDATES`` updates (sooner
    when the inputs reach ``GATHER_ELEMENTS`` elements or change their trailing shape),
    and before ``compute`` or ``forward``: the states, so the values, are those of one
    update per batch, bit for bit. ``reset`` drops what is gathered. Other metrics are
    updated at each call.
    """

    def __init__(self, metrics: Mapping[str, Metric], prefix: str) -> None:
        super().__init__(dict(metrics), prefix=prefix)
        self.gathers = all(isinstance(m, ROW_ADDITIVE) for m in self.values(copy_state=False))
        self._gathered: list[tuple[torch.Tensor, ...]] = []
        self._gathered_elements = [0]  # a list: setting a module attribute costs more

    def update(self, *args: Any, **kwargs: Any) -> None:
        if kwargs or not (self.gathers and args and all(_rows(a) for a in args)):
            self.apply_gathered()
            super().update(*args, **kwargs)
            return
        gathered = self._gathered
        if gathered and not _same_rows(args, gathered[0]):
            self.apply_gathered()
        gathered.append(args)
        self._gathered_elements[0] += sum(a.numel() for a in args)
        if len(gathered) >= GATHER_UPDATES or self._gathered_elements[0] >= GATHER_ELEMENTS:
            self.apply_gathered()

    def apply_gathered(self) -> None:
        """Update the metrics on the gathered inputs, concatenated."""
        gathered = self._gathered
        if not gathered:
            return
        inputs = gathered[0]
        if len(gathered) > 1:
            inputs = tuple(torch.cat(parts) for parts in zip(*gathered, strict=True))
        gathered.clear()
        self._gathered_elements[0] = 0
        super().update(*inputs)

    def compute(self) -> dict[str, Any]:
        self.apply_gathered()
        return super().compute()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.apply_gathered()
        return super().forward(*args, **kwargs)

    def reset(self) -> None:
        self._gathered.clear()
        self._gathered_elements[0] = 0
        super().reset()

    def epoch_state(self) -> dict[str, dict[str, Any]]:
        """Each metric's state (tensors, lists of tensors), with what is gathered applied:
        what a checkpoint saved mid-epoch carries (``hlt_core.contracts.ResumableMetrics``)."""
        self.apply_gathered()
        metrics = self.items(keep_base=True, copy_state=False)
        return {name: dict(metric.metric_state) for name, metric in metrics}

    def load_epoch_state(self, state: Mapping[str, Any]) -> None:
        """Go on from a state ``epoch_state`` gave. A checkpoint may come from someone
        else: ``ValueError`` when the state is not of these metrics (names, kinds, shapes)."""
        self.reset()
        metrics = dict(self.items(keep_base=True, copy_state=False))
        if not isinstance(state, Mapping) or set(state) != set(metrics):
            raise ValueError(f"train metrics {sorted(metrics)} have no state there")
        for name, metric in metrics.items():
            saved = state[name]
            if not isinstance(saved, Mapping):
                raise ValueError(f"{name} has no state there")
            metric.merge_state(
                {
                    key: _state_like(saved.get(key), default, metric.device, f"{name}.{key}")
                    for key, default in metric.metric_state.items()
                }
            )
            # merged into reset states: counted as updated, or computing it would warn
            metric._update_count = 1


def _state_like(value: Any, default: Any, device: torch.device, where: str) -> Any:
    """``value`` as a metric state of ``default``'s kind (a tensor of its shape and type,
    or a list of tensors), on the metric's ``device``."""
    if isinstance(default, torch.Tensor):
        if isinstance(value, torch.Tensor) and value.shape == default.shape:
            return value.to(device=device, dtype=default.dtype)
    elif isinstance(value, list) and all(isinstance(part, torch.Tensor) for part in value):
        return [part.to(device=device) for part in value]
    raise ValueError(f"the state {where} is not one of this metric's")
