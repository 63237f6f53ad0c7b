"""Batch keys: which batches a loader asks for, sharded over ranks, resumable mid-epoch.

Every hlt datamodule yields whole batches from a map-style dataset whose item is a key
``(epoch, index)``; ``index`` is the batch's place in the *global* epoch. The keys of
one epoch are dealt round-robin to the distributed ranks, and the DataLoader deals each
rank's keys to its workers, so every (rank, worker) reads different batches and none
twice. What a batch holds depends only on its key, never on how many workers or ranks
read it: the same seed gives the same stream whatever ``num_workers`` is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
from torch.utils.data import DistributedSampler, SequentialSampler


def batch_seed(seed: int, split: str, epoch: int, index: int) -> int:
    """A 63-bit seed that is a pure function of where a batch sits in the run."""
    digest = hashlib.blake2b(f"{seed}/{split}/{epoch}/{index}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little") >> 1


class EpochShuffle:
    """``items`` in an order drawn from (seed, split, epoch), kept for the epoch being read:
    a split's shuffled examples, the same whichever worker or rank asks for them."""

    def __init__(self, items: np.ndarray, seed: int, split: str) -> None:
        self.items = items
        self.seed = seed
        self.split = split
        self._kept: tuple[int, np.ndarray] | None = None

    def __call__(self, epoch: int) -> np.ndarray:
        if self._kept is None or self._kept[0] != epoch:
            rng = np.random.default_rng(batch_seed(self.seed, self.split, epoch, -1))
            self._kept = (epoch, self.items[rng.permutation(len(self.items))])
        return self._kept[1]


def rank_share(num_batches: int, rank: int, world_size: int, even: bool) -> range:
    """The global batch indices that ``rank`` reads.

    ``even`` (training) drops the last ``num_batches % world_size`` batches so that all
    ranks step the same number of times, as DDP needs; otherwise (val, test) every batch
    is read exactly once and the last ranks may read one batch fewer.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank={rank} is outside world_size={world_size}")
    stop = num_batches - num_batches % world_size if even else num_batches
    return range(rank, stop, world_size)


class BatchKeys(DistributedSampler, SequentialSampler):
    """Yields this rank's ``(epoch, index)`` keys, from a resume position if one is set.

    The keys come in a fixed order (what is random lives in the batch a key names). It is
    a ``DistributedSampler`` so that Lightning, seeing the data already sharded, does not
    wrap it in another one, and a ``SequentialSampler`` so that ``overfit_batches`` (which
    swaps any other sampler for a sequential one) leaves it in place; neither base's
    ``__init__`` is run. Lightning calls ``set_epoch`` before each training epoch.
    """

    def __init__(
        self,
        num_batches: int,
        rank: int = 0,
        world_size: int = 1,
        even: bool = True,
        same_every_epoch: bool = False,
    ) -> None:
        self.indices = rank_share(num_batches, rank, world_size, even)
        self.rank = rank
        self.num_replicas = world_size
        self.epoch = 0
        # every epoch reads epoch 0's batches: what overfitting a few batches means
        self.same_every_epoch = same_every_epoch
        self._resume: tuple[int, int] | None = None
        self.last_start = 0  # where the latest iteration began

    def set_epoch(self, epoch: int) -> None:
        if not self.same_every_epoch:
            self.epoch = epoch

    def resume_at(self, epoch: int, position: int) -> None:
        """Start the next iteration of ``epoch`` after its first ``position`` batches.

        Ignored when the next iteration is of another epoch, or when the epoch was
        already complete: the following epoch then starts from its beginning.
        """
        self._resume = (epoch, position)
        self.epoch = epoch

    def start(self) -> int:
        """Where the next iteration begins. The DataLoader may iterate the sampler more
        than once while building one iterator, so the resume stays until ``clear_resume``.
        """
        resume = self._resume
        if resume is None or resume[0] != self.epoch or resume[1] >= len(self.indices):
            return 0
        return resume[1]

    def clear_resume(self) -> None:
        self._resume = None

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]  # keys
        epoch, start = self.epoch, self.start()
        self.last_start = start
        return ((epoch, index) for index in self.indices[start:])
