"""The DataLoader of every hlt datamodule: whole batches by key, resumable mid-epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from hlt_data.batch import Batch
from hlt_data.keys import BatchKeys


def whole_batch(batch: Batch) -> Batch:
    """The collate of a loader whose items are already batches: nothing to do."""
    return batch


class ResumableLoader(DataLoader):
    """A DataLoader over ``BatchKeys`` that knows how many batches it has handed out.

    ``state_dict`` is ``{"epoch", "position"}``: the epoch and the number of batches the
    training loop has received from this rank (counted in the main process, so batches
    that workers prefetched but nobody consumed are not counted). Lightning >= 2.2 saves
    it in checkpoints and calls ``load_state_dict`` on resume, and the datamodule does
    the same through its own ``state_dict`` (which survives Lightning dropping loader
    states, e.g. after ``trainer.estimated_stepping_batches`` in ``configure_optimizers``).

    ``__iter__`` is a generator, so nothing is read until the first ``next``: by then
    Lightning has called ``set_epoch`` and restored any state, whatever order it did it in.
    """

    def __init__(self, dataset: Dataset, keys: BatchKeys, **kwargs: Any) -> None:
        kwargs.setdefault("collate_fn", whole_batch)
        # Every iterator draws a base seed for its workers. From a private generator it
        # leaves the global RNG alone, so a run resumed mid-epoch draws the same dropout
        # masks as the uninterrupted one (batches depend on their key, not on this seed).
        kwargs.setdefault("generator", torch.Generator().manual_seed(0))
        super().__init__(dataset, sampler=keys, batch_size=None, **kwargs)
        self.keys = keys
        self.position = 0

    def __iter__(self) -> Iterator[Batch]:  # type: ignore[override]
        self.position = 0
        batches = super().__iter__()
        self.keys.clear_resume()  # consumed by the iterator just built
        self.position = self.keys.last_start
        for batch in batches:
            self.position += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.keys.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.keys.resume_at(int(state["epoch"]), int(state["position"]))
