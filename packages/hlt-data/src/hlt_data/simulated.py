"""A datamodule whose batches are drawn on the fly by a pluggable sampler."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data import Sampler as TorchSampler

from hlt_data.batch import Batch

SPLITS = ("train", "val", "test")


@runtime_checkable
class Sampler(Protocol):
    """Draws whole batches, vectorised in torch.

    ``dims`` states what models and tasks need to know (``input_dim``,
    ``num_classes``, ``output_dim``, ``vocab_size``, ``seq_len``, ...). ``sample`` must
    take all its randomness from ``generator`` so that batches are reproducible.
    """

    dims: Mapping[str, int]

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch: ...


def batch_seed(seed: int, split: str, epoch: int, index: int) -> int:
    """A 63-bit seed that is a pure function of where a batch sits in the run."""
    digest = hashlib.blake2b(f"{seed}/{split}/{epoch}/{index}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little") >> 1


class _BatchKeys(TorchSampler):
    """Yields ``(epoch, index)`` keys; Lightning calls ``set_epoch`` on it each epoch."""

    def __init__(self, num_batches: int) -> None:
        self.num_batches = num_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, index) for index in range(self.num_batches))


class _SampledBatches(Dataset):
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


class SimulatedDataModule(L.LightningDataModule):
    """Batches drawn by ``sampler``; deterministic given (seed, split, epoch, batch index).

    ``dims``, when given (from the config), must match what the sampler states, so that
    configs that interpolate ``${data.dims...}`` cannot silently disagree with the data.
    """

    def __init__(
        self,
        sampler: Sampler,
        batch_size: int = 64,
        train_batches: int = 100,
        val_batches: int = 10,
        test_batches: int = 10,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        dims: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
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
                raise ValueError(f"data.{key} must be >= 1, got {value}")
        for key, value in dict(dims or {}).items():
            if sampler.dims.get(key) != value:
                raise ValueError(
                    f"data.dims.{key}={value} but the sampler produces "
                    f"{key}={sampler.dims.get(key)}"
                )
        self.sampler = sampler
        self.batch_size = batch_size
        self.num_batches = {"train": train_batches, "val": val_batches, "test": test_batches}
        self.seed = seed
        self.loader_kwargs = {
            "num_workers": num_workers,
            "pin_memory": pin_memory,
            "persistent_workers": persistent_workers and num_workers > 0,
        }

    @property
    def dims(self) -> dict[str, int]:
        return dict(self.sampler.dims)

    def _loader(self, split: str) -> DataLoader:
        dataset = _SampledBatches(
            self.sampler, split, self.seed, self.batch_size, fixed=split != "train"
        )
        return DataLoader(
            dataset,
            sampler=_BatchKeys(self.num_batches[split]),
            batch_size=None,
            **self.loader_kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")
