"""What the simulated and the file datamodules share: keyed loaders, dims, resume state."""

from __future__ import annotations

from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from hlt_data.batch import Batch
from hlt_data.errors import DataConfigError
from hlt_data.keys import BatchKeys
from hlt_data.loader import WORKER_CHUNK, ResumableLoader, whole_batch
from hlt_data.splits import SPLITS


class KeyedDataModule(L.LightningDataModule):
    """A datamodule whose loaders read whole batches by ``(epoch, index)`` key.

    Subclasses give ``dims``, ``num_batches(split)`` and ``dataset(split)``; what the run
    reads of a datamodule is ``hlt_core.contracts.DataModule``. The train
    loader's position is part of this datamodule's ``state_dict``, so a run resumed from
    a mid-epoch checkpoint reads exactly the batches an uninterrupted run would.
    With workers, each worker item carries ``worker_chunk`` consecutive batches (see
    ``hlt_data.chunks``); the stream is the same for any ``num_workers`` and chunk.
    """

    def __init__(
        self,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        worker_chunk: int = WORKER_CHUNK,
    ) -> None:
        super().__init__()
        if num_workers < 0:
            raise DataConfigError(f"data.num_workers must be >= 0, got {num_workers}")
        if worker_chunk < 1:
            raise DataConfigError(f"data.worker_chunk must be >= 1, got {worker_chunk}")
        self.worker_chunk = worker_chunk
        self.loader_kwargs: dict[str, Any] = {
            "num_workers": num_workers,
            "pin_memory": pin_memory,
            "persistent_workers": persistent_workers and num_workers > 0,
        }
        self._train_loader: ResumableLoader | None = None
        self._pending_state: dict[str, int] | None = None

    @property
    def dims(self) -> dict[str, Any]:
        """What the data is, for models and tasks (``${data.dims.*}``): sizes such as
        ``input_dim``, ``num_classes``, ``vocab_size``, ``seq_len``, ``output_dim``, and
        where they apply ``labels`` (class names) and ``target_mean``/``target_std``."""
        raise NotImplementedError

    @property
    def data_facts(self) -> dict[str, Any]:
        """What checkpoints and exports carry of the data, so that new inputs are read as
        training read them: the ``dims``, and in subclasses what they fitted on the
        training split."""
        return {"dims": self.dims}

    def row_ids(self, split: str) -> list[tuple[str, str]] | None:
        """``(file, row id)`` of each example of ``split`` in prediction order; None where
        rows have no names (they are then numbered)."""
        return None

    def true_targets(self, split: str) -> list[str] | None:
        """The target of each example of ``split`` in prediction order, as a predictions
        table writes it; None where the data does not keep them."""
        return None

    def example_batch(self) -> Batch:
        """The first training batch, read straight from the dataset (no loader, no
        workers): the example input of the model summary and of the export."""
        return self.dataset("train")[(0, 0)]

    def num_batches(self, split: str) -> int:
        raise NotImplementedError

    def dataset(self, split: str) -> Dataset:
        raise NotImplementedError

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _overfitting(self) -> bool:
        """Under ``trainer.overfit_batches`` the train batches must not change between
        epochs (a simulated epoch draws new ones), or there is nothing to overfit."""
        trainer = getattr(self, "trainer", None)
        return trainer is not None and bool(trainer.overfit_batches)

    def loader(self, split: str, rank: int | None = None, world_size: int | None = None):
        """The loader of ``split`` for this rank (by default the trainer's rank)."""
        if split not in SPLITS:
            raise DataConfigError(f"split={split!r} is unknown; choose one of {list(SPLITS)}")
        default_rank, default_world = self._rank_and_world()
        keys = BatchKeys(
            self.num_batches(split),
            rank=default_rank if rank is None else rank,
            world_size=default_world if world_size is None else world_size,
            even=split == "train",
            same_every_epoch=split == "train" and self._overfitting(),
        )
        return ResumableLoader(
            self.dataset(split), keys, chunk=self.worker_chunk, **self.loader_kwargs
        )

    def train_dataloader(self) -> ResumableLoader:
        self._train_loader = self.loader("train")
        if self._pending_state is not None:
            self._train_loader.load_state_dict(self._pending_state)
            self._pending_state = None
        return self._train_loader

    def val_dataloader(self) -> ResumableLoader:
        return self.loader("val")

    def test_dataloader(self) -> ResumableLoader:
        return self.loader("test")

    def predict_dataloader(self) -> DataLoader:
        """The test split in a plain DataLoader: Lightning rebuilds predict loaders from
        their arguments (to track batch indices), which a ``ResumableLoader``'s own
        arguments do not allow, and predicting needs no resume."""
        rank, world_size = self._rank_and_world()
        keys = BatchKeys(self.num_batches("test"), rank, world_size, even=False)
        return DataLoader(
            self.dataset("test"),
            sampler=keys,
            batch_size=None,
            collate_fn=whole_batch,
            **self.loader_kwargs,
        )

    def state_dict(self) -> dict[str, Any]:
        if self._train_loader is None:
            return {}
        return {"train_loader": self._train_loader.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = state_dict.get("train_loader")
        if state is None:
            return
        if self._train_loader is not None:  # already built (before the restore)
            self._train_loader.load_state_dict(state)
        else:
            self._pending_state = dict(state)
