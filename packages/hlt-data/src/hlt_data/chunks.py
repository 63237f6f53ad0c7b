"""Worker chunks: K consecutive batches cross the worker -> main-process queue as one item.

Handing a tensor from a DataLoader worker to the main process costs a shared-memory
segment and a file-descriptor handshake per tensor (about 1 ms per batch on a small CPU
machine), far more than reading a memory-mapped batch (tens of microseconds). So when a
loader has workers, each worker item is a *chunk*: the batches of K consecutive keys,
concatenated into one tensor per batch key (written straight into shared memory), which
the main process splits back into per-batch views. What a batch holds still depends
only on its key, and the main process still hands out (and counts) one batch at a time,
so the stream and its resume positions are those of ``num_workers=0``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler, get_worker_info

from hlt_data.batch import Batch
from hlt_data.keys import BatchKeys

Key = tuple[int, int]


def _concatenable(values: list) -> bool:
    first = values[0]
    return all(
        isinstance(v, torch.Tensor)
        and v.dim() >= 1
        and v.dtype == first.dtype
        and v.device == first.device
        and v.shape[1:] == first.shape[1:]
        for v in values
    )


def _concat(values: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat`` along the batch dimension, into shared memory inside a worker (so
    that sending it to the main process does not copy it again, as ``default_collate``)."""
    first = values[0]
    out = None
    if get_worker_info() is not None:
        numel = sum(v.numel() for v in values)
        storage = first._typed_storage()._new_shared(numel, device=first.device)
        out = first.new(storage).resize_(sum(len(v) for v in values), *first.shape[1:])
    return torch.cat(values, 0, out=out)


def _pin(value):
    if isinstance(value, torch.Tensor):
        return value.pin_memory()
    if isinstance(value, dict):
        return {name: _pin(v) for name, v in value.items()}
    if isinstance(value, list):
        return [_pin(v) for v in value]
    return value


class Chunk:
    """Consecutive batches as one tensor per batch key, with each batch's row counts.

    A key whose values cannot be concatenated (not tensors, 0-d, or differing in dtype
    or trailing shape) travels as the list of its per-batch values; batches whose keys
    differ travel as they are. Either way ``split()`` returns exactly the batches given.
    """

    __slots__ = ("count", "parts", "sizes")

    def __init__(
        self,
        parts: dict[str, torch.Tensor | list] | list[Batch],
        sizes: dict[str, list[int] | None],
        count: int,
    ) -> None:
        self.parts = parts
        self.sizes = sizes
        self.count = count

    @classmethod
    def of(cls, batches: list[Batch]) -> Chunk:
        """The chunk of ``batches`` (each a dict of tensors with the batch along dim 0)."""
        names = list(batches[0])
        if any(list(b) != names for b in batches):
            return cls(list(batches), {}, len(batches))
        parts: dict[str, torch.Tensor | list] = {}
        sizes: dict[str, list[int] | None] = {}
        for name in names:
            values = [b[name] for b in batches]
            if _concatenable(values):
                parts[name] = _concat(values)
                sizes[name] = [len(v) for v in values]
            else:
                parts[name], sizes[name] = values, None
        return cls(parts, sizes, len(batches))

    @classmethod
    def joined(cls, batch: Batch, sizes: list[int]) -> Chunk:
        """The chunk of batches already concatenated into ``batch``, of ``sizes`` rows."""
        for name, value in batch.items():
            if len(value) != sum(sizes):
                raise ValueError(f"{name} has {len(value)} rows, expected {sum(sizes)}")
        return cls(dict(batch), {name: list(sizes) for name in batch}, len(sizes))

    def split(self) -> list[Batch]:
        """The batches, as views of the concatenated tensors (no copy)."""
        if isinstance(self.parts, list):
            return self.parts
        columns = {}
        for name, part in self.parts.items():
            sizes = self.sizes[name]
            # tensors are split into views; a list of per-batch values is already split
            columns[name] = part.split(sizes) if isinstance(part, torch.Tensor) and sizes else part
        return [{name: column[i] for name, column in columns.items()} for i in range(self.count)]

    def pin_memory(self) -> Chunk:
        """Called by the DataLoader's pinning thread: pins each tensor once per chunk."""
        return Chunk(_pin(self.parts), self.sizes, self.count)


class ChunkedBatches(Dataset):
    """Item ``[key, ...]`` is the ``Chunk`` of ``dataset``'s batches at those keys.

    A dataset that can read several batches at once more cheaply than one by one has
    ``read_joined(keys) -> (batch, sizes)``: the batches at ``keys`` already
    concatenated, and their row counts; it must equal concatenating ``dataset[key]``.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __getitem__(self, keys: list[Key]) -> Chunk:
        read_joined = getattr(self.dataset, "read_joined", None)
        if read_joined is not None:
            return Chunk.joined(*read_joined(keys))
        return Chunk.of([self.dataset[key] for key in keys])


class ChunkedKeys(DistributedSampler):
    """``BatchKeys`` grouped into lists of ``size`` consecutive keys, one list per item.

    Fewer than ``size`` when the epoch is short, so that every worker gets some of it:
    ``min(size, ceil(keys / workers))``. It is a ``DistributedSampler`` for the same
    reason as ``BatchKeys`` (Lightning does not wrap it again); ``set_epoch`` and the
    resume position are those of the wrapped keys, counted in batches.
    """

    def __init__(self, keys: BatchKeys, size: int, workers: int) -> None:
        if size < 1 or workers < 1:
            raise ValueError(f"chunk size {size} and workers {workers} must be >= 1")
        self.keys = keys
        self.size = size
        self.workers = workers
        self.rank = keys.rank
        self.num_replicas = keys.num_replicas

    @property
    def epoch(self) -> int:
        return self.keys.epoch

    @epoch.setter
    def epoch(self, epoch: int) -> None:
        self.keys.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.keys.set_epoch(epoch)

    def chunk_size(self, count: int) -> int:
        return max(1, min(self.size, math.ceil(count / self.workers)))

    def __len__(self) -> int:
        count = len(self.keys)
        return math.ceil(count / self.chunk_size(count))

    def __iter__(self) -> Iterator[list[Key]]:
        keys = list(self.keys)  # now, not lazily: the resume position is read here
        size = self.chunk_size(len(keys))
        return (keys[i : i + size] for i in range(0, len(keys), size))
