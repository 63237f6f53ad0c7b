"""A datamodule whose batches are drawn on the fly by a pluggable sampler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch.utils.data import Dataset

from hlt_data.base import KeyedDataModule
from hlt_data.batch import Batch
from hlt_data.errors import DataConfigError
from hlt_data.keys import batch_seed
from hlt_data.loader import WORKER_CHUNK


@runtime_checkable
class Sampler(Protocol):
    """Draws whole batches, vectorised in torch (no per-sample Python, no collate).

    ``dims`` states what models and tasks need to know (``input_dim``,
    ``num_classes``, ``output_dim``, ``vocab_size``, ``seq_len``, ...).
    ``sample(batch_size, generator)`` returns a batch dict (``hlt_data.batch``) and
    must take all its randomness from ``generator``: that is what makes batches
    reproducible and different per split, epoch and batch index. Any object with these
    two members works; configure it with ``_target_`` under ``data.sampler``.
    """

    dims: Mapping[str, int]

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch: ...


class SampledBatches(Dataset):
    """Item ``(epoch, index)`` is a whole batch drawn with a seed derived from that key."""

    def __init__(
        self, sampler: Sampler, split: str, seed: int, batch_size: int, fixed: bool
    ) -> None:
        self.sampler = sampler
        self.split = split
        self.seed = seed
        self.batch_size = batch_size
        self.fixed = fixed  # val and test draw the same batches every epoch

    def __getitem__(self, key: tuple[int, int]) -> Batch:
        epoch, index = key
        seed = batch_seed(self.seed, self.split, 0 if self.fixed else epoch, index)
        return self.sampler.sample(self.batch_size, torch.Generator().manual_seed(seed))


class SimulatedDataModule(KeyedDataModule):
    """Batches drawn by ``sampler``; deterministic given (seed, split, epoch, batch index).

    ``train_batches`` is the epoch length in batches, over all ranks together. Val and
    test are the same every epoch. ``dims`` are what the sampler states (its sizes are
    its own parameters).
    """

    def __init__(
        self,
        sampler: Sampler,
        batch_size: int = 64,
        train_batches: int = 100,
        val_batches: int = 10,
        test_batches: int = 10,
        seed: int = 0,
        # the loader settings of KeyedDataModule, as keywords so that a data config sets them
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        worker_chunk: int = WORKER_CHUNK,
    ) -> None:
        super().__init__(num_workers, pin_memory, persistent_workers, worker_chunk)
        if not isinstance(sampler, Sampler):
            raise TypeError(
                f"sampler {type(sampler).__name__} lacks the Sampler protocol "
                "(a `dims` mapping and a `sample(batch_size, generator)` method)"
            )
        sizes = {
            "batch_size": batch_size,
            "train_batches": train_batches,
            "val_batches": val_batches,
            "test_batches": test_batches,
        }
        for key, value in sizes.items():
            if value < 1:
                raise DataConfigError(f"data.{key} must be >= 1, got {value}")
        self.sampler = sampler
        self.batch_size = batch_size
        self._num_batches = {"train": train_batches, "val": val_batches, "test": test_batches}
        self.seed = seed

    @property
    def dims(self) -> dict[str, Any]:
        return dict(self.sampler.dims)

    def num_batches(self, split: str) -> int:
        return self._num_batches[split]

    def dataset(self, split: str) -> SampledBatches:
        return SampledBatches(
            self.sampler, split, self.seed, self.batch_size, fixed=split != "train"
        )
