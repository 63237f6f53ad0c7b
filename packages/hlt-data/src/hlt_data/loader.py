"""The DataLoader of every hlt datamodule: whole batches by key, resumable mid-epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from hlt_data.batch import Batch
from hlt_data.chunks import ChunkedBatches, ChunkedKeys
from hlt_data.keys import BatchKeys

WORKER_CHUNK = 32  # at most this many batches per worker item (``hlt_data.chunks``)
CHUNK_BYTES = 8 << 20  # and at most about this many bytes per item


def batch_bytes(batch: Batch) -> int:
    return sum(v.nbytes for v in batch.values() if isinstance(v, torch.Tensor))


def chunk_size(dataset: Dataset, keys: BatchKeys, chunk: int, limit: int = CHUNK_BYTES) -> int:
    """Batches per worker item: ``chunk``, fewer if that would exceed ``limit`` bytes
    (measured on this rank's first batch, read here), so that large batches (images),
    whose reading costs far more than handing them over, still go one by one."""
    if chunk <= 1 or len(keys) == 0:
        return 1
    size = batch_bytes(dataset[(keys.epoch, keys.indices[0])])
    return max(1, min(chunk, limit // max(1, size)))


def whole_batch(batch: Any) -> Any:
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

    With workers (``num_workers > 0``) and ``chunk > 1``, each worker item is a ``Chunk``
    of up to ``chunk`` consecutive batches (one shared-memory tensor per batch key), split
    back into per-batch views here; batches are still handed out and counted one by one,
    so the stream, ``len`` and the resume position are those of ``num_workers=0``, and a
    resume may fall inside a chunk. ``chunk=1`` sends each batch as its own item. Items
    are kept to about ``CHUNK_BYTES`` (``chunk_size``): prefetching holds
    ``prefetch_factor * num_workers`` items in shared memory.
    """

    def __init__(
        self, dataset: Dataset, keys: BatchKeys, chunk: int = WORKER_CHUNK, **kwargs: Any
    ) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        kwargs.setdefault("collate_fn", whole_batch)
        # Every iterator draws a base seed for its workers. From a private generator it
        # leaves the global RNG alone, so a run resumed mid-epoch draws the same dropout
        # masks as the uninterrupted one (batches depend on their key, not on this seed).
        kwargs.setdefault("generator", torch.Generator().manual_seed(0))
        workers = kwargs.get("num_workers", 0)
        size = chunk_size(dataset, keys, chunk) if workers > 0 else 1
        self.chunked = size > 1
        if self.chunked:
            chunked = ChunkedKeys(keys, size, workers)
            super().__init__(ChunkedBatches(dataset), sampler=chunked, batch_size=None, **kwargs)
        else:
            super().__init__(dataset, sampler=keys, batch_size=None, **kwargs)
        self.keys = keys
        # batches per worker item in a whole epoch (1: not chunked)
        self.chunk = chunked.chunk_size(len(keys)) if self.chunked else 1
        self.position = 0

    def __len__(self) -> int:
        return len(self.keys)  # batches, not chunks

    def _in_process(self) -> Iterator[Batch]:
        """Without workers or pinning, read each key straight from the dataset: the
        DataLoader's single-process iterator only adds per-batch overhead (a profiler
        record, a fetcher, an identity collate) to items that are whole batches."""
        dataset, keys = self.dataset, iter(self.keys)  # keys fixed now, as DataLoader does
        return (dataset[key] for key in keys)

    def __iter__(self) -> Iterator[Batch]:  # type: ignore[override]
        self.position = 0
        in_process = self.num_workers == 0 and not self.pin_memory
        items: Iterator[Any] = self._in_process() if in_process else super().__iter__()
        self.keys.clear_resume()  # consumed by the iterator just built
        self.position = self.keys.last_start
        for item in items:
            for batch in item.split() if self.chunked else (item,):
                self.position += 1
                yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.keys.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.keys.resume_at(int(state["epoch"]), int(state["position"]))
