"""The real-data datamodule: files listed by a getter, read by a reader, split by rule."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hlt_data.base import SPLITS, KeyedDataModule, check_dims
from hlt_data.batch import INPUTS, TARGETS, Batch
from hlt_data.errors import DataConfigError
from hlt_data.keys import batch_seed
from hlt_data.loader import WORKER_CHUNK
from hlt_data.readers import IGNORE_INDEX, Reader, Table
from hlt_data.splits import split_indices

FileSource = Callable[[], Sequence[Any]] | Sequence[Any]


def list_files(source: FileSource, where: str) -> list[Path]:
    """Paths from a getter (called) or an explicit list; ``where`` names the config key."""
    paths = source() if callable(source) else source
    if isinstance(paths, (str, Path)) or not isinstance(paths, Sequence):
        raise DataConfigError(f"{where} must be a getter or a list of paths, got {paths!r}")
    if not paths:
        raise DataConfigError(f"{where} lists no files")
    return [Path(p) for p in paths]


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    if np.issubdtype(array.dtype, np.floating):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
    raise DataConfigError(f"arrays of dtype {array.dtype} cannot become tensors")


class Examples:
    """The examples of several files as one indexable collection (no copy)."""

    def __init__(self, files: list[Path], tables: list[Table]) -> None:
        self.files = files
        self.tables = tables
        self.offsets = np.cumsum([0] + [len(t) for t in tables])
        self.check_consistent()

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def check_consistent(self) -> None:
        first, ref = self.tables[0], self.files[0]
        for file, table in zip(self.files[1:], self.tables[1:], strict=True):
            if table.columns != first.columns:
                raise DataConfigError(
                    f"{file}: columns {table.columns}, expected {first.columns} as in {ref}"
                )
            for name in ("inputs", "targets"):
                got, want = getattr(table, name), getattr(first, name)
                if got.shape[1:] != want.shape[1:]:
                    raise DataConfigError(
                        f"{file}: {name} of shape {tuple(got.shape[1:])} per example, "
                        f"expected {tuple(want.shape[1:])} as in {ref}"
                    )
            if set(table.extras) != set(first.extras):
                raise DataConfigError(
                    f"{file}: extras {sorted(table.extras)}, expected {sorted(first.extras)}"
                )

    def gather(self, rows: np.ndarray) -> Batch:
        """Rows (sorted, global) as one batch; memory-mapped files read only these rows."""
        names = ["inputs", "targets", *self.tables[0].extras]
        if len(self.tables) == 1:
            parts = {n: [self._column(self.tables[0], n)[rows]] for n in names}
        else:
            which = np.searchsorted(self.offsets, rows, side="right") - 1
            parts = {n: [] for n in names}
            for t in np.unique(which):
                local = rows[which == t] - self.offsets[t]
                for n in names:
                    parts[n].append(self._column(self.tables[t], n)[local])
        batch = {n: _as_tensor(np.concatenate(p) if len(p) > 1 else p[0]) for n, p in parts.items()}
        return {INPUTS: batch.pop("inputs"), TARGETS: batch.pop("targets"), **batch}

    @staticmethod
    def _column(table: Table, name: str) -> np.ndarray:
        return table.extras[name] if name in table.extras else getattr(table, name)


class FileBatches(Dataset):
    """Item ``(epoch, index)`` is batch ``index`` of the split's order in that epoch.

    Training order is a permutation drawn from (seed, split, epoch); val and test keep
    file order and are the same every epoch.
    """

    def __init__(
        self,
        examples: Examples,
        rows: np.ndarray,
        batch_size: int,
        split: str,
        seed: int,
        shuffle: bool,
    ) -> None:
        self.examples = examples
        self.rows = rows
        self.batch_size = batch_size
        self.split = split
        self.seed = seed
        self.shuffle = shuffle
        self._order: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return self.rows
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng(batch_seed(self.seed, self.split, epoch, -1))
            self._order = (epoch, self.rows[rng.permutation(len(self.rows))])
        return self._order[1]

    def rows_of(self, key: tuple[int, int]) -> np.ndarray:
        epoch, index = key
        start = index * self.batch_size
        return np.sort(self.order(epoch)[start : start + self.batch_size])

    def __getitem__(self, key: tuple[int, int]) -> Batch:
        return self.examples.gather(self.rows_of(key))

    def read_joined(self, keys: list[tuple[int, int]]) -> tuple[Batch, list[int]]:
        """The batches at ``keys`` concatenated, read at once from a single file (a worker
        chunk, ``hlt_data.chunks``); several files are read batch by batch."""
        rows = [self.rows_of(key) for key in keys]
        sizes = [len(r) for r in rows]
        if len(self.examples.tables) == 1:
            return self.examples.gather(np.concatenate(rows)), sizes
        batches = [self.examples.gather(r) for r in rows]
        return {name: torch.cat([b[name] for b in batches]) for name in batches[0]}, sizes


class FileDataModule(KeyedDataModule):
    """Examples from files: ``files`` lists them, ``reader`` reads one, splits divide them.

    ``files`` is a getter (a callable returning paths, e.g. ``GlobFiles``), a list of
    paths, or a mapping ``{train: ..., val: ..., test: ...}`` of those for explicit
    per-split lists or folders. With a single source, examples are divided by
    ``split_fractions`` after a permutation drawn from ``split_seed``. Everything is
    listed, read (``.npy`` memory-mapped) and checked here, before training starts.
    """

    def __init__(
        self,
        files: FileSource | Mapping[str, FileSource],
        reader: Reader,
        batch_size: int = 64,
        split_fractions: Mapping[str, float] | None = None,
        split_seed: int = 0,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        worker_chunk: int = WORKER_CHUNK,
        dims: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(num_workers, pin_memory, persistent_workers, worker_chunk)
        if batch_size < 1:
            raise DataConfigError(f"data.batch_size must be >= 1, got {batch_size}")
        self.reader = reader
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.examples: dict[str, Examples] = {}
        self.rows: dict[str, np.ndarray] = {}
        if isinstance(files, Mapping):
            self._explicit_splits(files)
        else:
            self._fraction_splits(files, split_fractions or {}, split_seed)
        for split in SPLITS:
            if self.num_batches(split) < 1:
                raise DataConfigError(
                    f"split {split} has {len(self.rows[split])} examples: fewer than one "
                    f"batch of data.batch_size={batch_size}"
                )
        self._dims = self._state_dims()
        check_dims(dims, self._dims)

    def _read(self, paths: list[Path]) -> Examples:
        return Examples(paths, [self.reader(path) for path in paths])

    def _explicit_splits(self, files: Mapping[str, FileSource]) -> None:
        unknown = sorted(set(files) - set(SPLITS))
        if unknown or len(files) != len(SPLITS):
            raise DataConfigError(
                f"data.files has splits {sorted(files)}; per-split files need exactly "
                f"{list(SPLITS)}"
            )
        for split in SPLITS:
            self.examples[split] = self._read(list_files(files[split], f"data.files.{split}"))
            self.rows[split] = np.arange(len(self.examples[split]))
        Examples(
            [self.examples[s].files[0] for s in SPLITS],
            [self.examples[s].tables[0] for s in SPLITS],
        )  # splits must agree with each other too

    def _fraction_splits(
        self, files: FileSource, fractions: Mapping[str, float], seed: int
    ) -> None:
        examples = self._read(list_files(files, "data.files"))
        for split, rows in split_indices(len(examples), fractions, seed).items():
            self.examples[split], self.rows[split] = examples, rows

    def _state_dims(self) -> dict[str, int]:
        """What models and tasks need, read off the data (and the reader's tokenizer)."""
        first = self.examples["train"].tables[0]
        dims: dict[str, int] = {}
        inputs, targets = first.inputs, first.targets
        tokens = np.issubdtype(inputs.dtype, np.integer)
        if tokens:
            dims["seq_len"] = int(inputs.shape[1]) if inputs.ndim > 1 else 1
            tokenizer = getattr(self.reader, "tokenizer", None)
            dims["vocab_size"] = (
                int(tokenizer.vocab_size)
                if tokenizer is not None
                else 1 + max(int(t.inputs.max()) for s in SPLITS for t in self.examples[s].tables)
            )
        elif inputs.ndim == 2:
            dims["input_dim"] = int(inputs.shape[1])
        if np.issubdtype(targets.dtype, np.integer):
            if tokens and targets.ndim == 2:
                dims["num_classes"] = dims["vocab_size"]
            else:
                top = max(
                    int(np.max(np.where(t.targets == IGNORE_INDEX, 0, t.targets)))
                    for s in SPLITS
                    for t in self.examples[s].tables
                )
                dims["num_classes"] = top + 1
        else:
            dims["output_dim"] = 1 if targets.ndim == 1 else int(np.prod(targets.shape[1:]))
        return dims

    @property
    def dims(self) -> dict[str, int]:
        return dict(self._dims)

    def num_batches(self, split: str) -> int:
        count = len(self.rows[split])
        if split == "train" and self.drop_last:
            return count // self.batch_size
        return math.ceil(count / self.batch_size)

    def dataset(self, split: str) -> FileBatches:
        return FileBatches(
            self.examples[split],
            self.rows[split],
            self.batch_size,
            split,
            self.seed,
            shuffle=self.shuffle and split == "train",
        )
