"""The real-data datamodule: files listed by a getter, read by a reader, split by rule.

After the split, everything the data is gets fixed on the training split alone: the
label vocabulary (class targets), target statistics (real targets) and feature
statistics (standardisation). Bad data (non-numbers, NaN/Inf, unseen labels) fails here,
before training, naming file, row and column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hlt_data.base import KeyedDataModule
from hlt_data.batch import INPUTS, TARGETS, Batch
from hlt_data.columns import THREADS
from hlt_data.errors import DataConfigError
from hlt_data.keys import EpochShuffle
from hlt_data.loader import WORKER_CHUNK
from hlt_data.readers import Reader, Table
from hlt_data.splits import DEFAULT_FRACTIONS, SPLITS, split_indices
from hlt_data.targets import LabelVocabulary, real_values, resolve_target_type

FileSource = Callable[[], Sequence[Any]] | Sequence[Any]
CHUNK_ROWS = 1 << 16  # rows per pass over memory-mapped data (checks)
# rows of the feature statistics' chunks: their float64 copy stays in a core's cache, and
# there are enough chunks to keep every thread busy (1M rows x 19 inputs: 40-50 ms of
# wall time here, against 85 ms for chunks of 65,536 rows)
MOMENT_ROWS = 1 << 14


def list_files(source: FileSource, where: str) -> list[Path]:
    """Paths from a getter (called) or an explicit list; ``where`` names the config key."""
    paths = source() if callable(source) else source
    if isinstance(paths, (str, Path)) or not isinstance(paths, Sequence):
        raise DataConfigError(f"{where} must be a getter or a list of paths, got {paths!r}")
    if not paths:
        raise DataConfigError(f"{where} lists no files")
    return [Path(p) for p in paths]


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    if array.dtype == np.bool_:
        return torch.from_numpy(np.ascontiguousarray(array))
    if np.issubdtype(array.dtype, np.floating):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if np.issubdtype(array.dtype, np.integer):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
    raise DataConfigError(f"arrays of dtype {array.dtype} cannot become tensors")


def _column_name(table: Table, flat_index: int) -> str:
    if table.columns is not None and flat_index < len(table.columns):
        return f"column '{table.columns[flat_index]}'"
    return f"position {flat_index}"


def check_finite(file: Path, table: Table, name: str) -> None:
    """NaN or infinite values in a float array are named by file, row and column (when
    training, and by ``hlt predict`` on new files); inputs a table's encoder made are
    finite already (it names such cells itself)."""
    array = getattr(table, name)
    if array is None or not np.issubdtype(array.dtype, np.floating):
        return
    if name == INPUTS and table.finite:
        return
    for start in range(0, len(array), CHUNK_ROWS):
        chunk = np.asarray(array[start : start + CHUNK_ROWS]).reshape(
            min(CHUNK_ROWS, len(array) - start), -1
        )
        bad = ~np.isfinite(chunk)
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            where = "target" if name == TARGETS else _column_name(table, column)
            raise DataConfigError(
                f"{file} {table.row_name(start + row)} {where}: {chunk[row, column]} "
                f"(NaN or infinite {name} can be neither trained on nor predicted; fix or "
                "drop the row)"
            )


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
            if (table.targets is None) != (first.targets is None):
                raise DataConfigError(f"{file}: targets differ from {ref} (one has none)")
            for name in (INPUTS, TARGETS):
                got, want = getattr(table, name), getattr(first, name)
                if got is not None and got.shape[1:] != want.shape[1:]:
                    raise DataConfigError(
                        f"{file}: {name} of shape {tuple(got.shape[1:])} per example, "
                        f"expected {tuple(want.shape[1:])} as in {ref}"
                    )
            if set(table.extras) != set(first.extras):
                raise DataConfigError(
                    f"{file}: extras {sorted(table.extras)}, expected {sorted(first.extras)}"
                )

    def names(self) -> list[str]:
        first = self.tables[0]
        return [INPUTS, *([TARGETS] if first.targets is not None else []), *first.extras]

    def values(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Rows (sorted, global) of one array; memory-mapped files read only these rows."""
        if len(self.tables) == 1:
            return self._column(self.tables[0], name)[rows]
        which = np.searchsorted(self.offsets, rows, side="right") - 1
        parts = [
            self._column(self.tables[t], name)[rows[which == t] - self.offsets[t]]
            for t in np.unique(which)
        ]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def gather(self, rows: np.ndarray) -> Batch:
        """Rows (sorted, global) as one batch."""
        return {name: _as_tensor(self.values(name, rows)) for name in self.names()}

    @staticmethod
    def _column(table: Table, name: str) -> np.ndarray:
        return table.extras[name] if name in table.extras else getattr(table, name)


class FeatureScaler:
    """Standardises float inputs with a mean and standard deviation per feature,
    fitted on the training rows only (constant features are left unscaled, and so are
    the last ``fixed`` inputs: category codes, which models embed)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.std = torch.as_tensor(std, dtype=torch.float32)

    @classmethod
    def fit(cls, examples: Examples, rows: np.ndarray, fixed: int = 0) -> FeatureScaler:
        """One pass in float64 over chunks of rows (so memory-mapped data stays on disk),
        each chunk's mean and squared deviations (a few chunks at once, on threads)
        merged in order into the running ones (Chan et al.'s pairwise update, as exact as
        two passes)."""
        shape = examples.tables[0].inputs.shape[1:]
        count, mean, squares = 0, np.zeros(shape), np.zeros(shape)
        starts = range(0, len(rows), MOMENT_ROWS)
        with ThreadPoolExecutor(THREADS) as pool:
            chunks = pool.map(lambda s: _moments(examples, rows[s : s + MOMENT_ROWS]), starts)
            for size, chunk_mean, chunk_squares in chunks:
                delta, total = chunk_mean - mean, count + size
                mean += delta * (size / total)
                squares += chunk_squares + delta**2 * (count * size / total)
                count = total
        std = np.sqrt(squares / count)
        std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        if fixed:
            mean[..., -fixed:], std[..., -fixed:] = 0.0, 1.0
        return cls(mean, std)

    def __call__(self, batch: Batch) -> Batch:
        return {**batch, INPUTS: (batch[INPUTS] - self.mean) / self.std}

    def state(self) -> dict[str, list[float]]:
        return {"feature_mean": self.mean.tolist(), "feature_std": self.std.tolist()}


def _moments(examples: Examples, rows: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Rows' count, mean and sum of squared deviations from it, per feature, in float64."""
    chunk = examples.values(INPUTS, rows).astype(np.float64)
    chunk_mean = chunk.mean(axis=0)
    chunk -= chunk_mean
    return len(chunk), chunk_mean, np.einsum("i...,i...->...", chunk, chunk)


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
        scaler: FeatureScaler | None = None,
    ) -> None:
        self.examples = examples
        self.rows = rows
        self.batch_size = batch_size
        self.split = split
        self.shuffle = shuffle
        self.scaler = scaler
        self.shuffled = EpochShuffle(rows, seed, split)

    def order(self, epoch: int) -> np.ndarray:
        return self.shuffled(epoch) if self.shuffle else self.rows

    def rows_of(self, key: tuple[int, int]) -> np.ndarray:
        epoch, index = key
        start = index * self.batch_size
        return np.sort(self.order(epoch)[start : start + self.batch_size])

    def _read(self, rows: np.ndarray) -> Batch:
        batch = self.examples.gather(rows)
        return self.scaler(batch) if self.scaler is not None else batch

    def __getitem__(self, key: tuple[int, int]) -> Batch:
        return self._read(self.rows_of(key))

    def read_joined(self, keys: list[tuple[int, int]]) -> tuple[Batch, list[int]]:
        """The batches at ``keys`` concatenated, read at once from a single file (a worker
        chunk, ``hlt_data.chunks``); several files are read batch by batch."""
        rows = [self.rows_of(key) for key in keys]
        sizes = [len(r) for r in rows]
        if len(self.examples.tables) == 1:
            return self._read(np.concatenate(rows)), sizes
        batches = [self._read(r) for r in rows]
        return {name: torch.cat([b[name] for b in batches]) for name in batches[0]}, sizes


class FileDataModule(KeyedDataModule):
    """Examples from files: ``files`` lists them, ``reader`` reads one, splits divide them.

    ``files`` is a getter (a callable returning paths, e.g. ``GlobFiles``), a list of
    paths, or a mapping ``{train: ..., val: ..., test: ...}`` of those for explicit
    per-split lists or folders. With a single source, examples are divided by
    ``split_fractions`` (default 70/15/15) after a permutation drawn from ``split_seed``.

    ``target_type`` says how targets are read (``class``: labels through a vocabulary
    fitted on the training split; ``real``: numbers; ``none``; ``auto``: strings and whole
    numbers are classes). ``normalize`` standardises float features with statistics of
    the training split (and states real targets' mean and std, which the regression task
    uses to train on standardised targets while reporting original units). Everything is
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
        normalize: bool = True,
        target_type: str = "auto",
        # the loader settings of KeyedDataModule, as keywords so that a data config sets them
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        worker_chunk: int = WORKER_CHUNK,
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
            self._fraction_splits(files, split_fractions or DEFAULT_FRACTIONS, split_seed)
        for split in SPLITS:
            if self.num_batches(split) < 1:
                raise DataConfigError(
                    f"split {split} has {len(self.rows[split])} examples: fewer than one "
                    f"batch of data.batch_size={batch_size}"
                )
        train = self.examples["train"]
        sample = target_type == "auto" and train.tables[0].targets is not None
        self.target_type = resolve_target_type(
            target_type, train.values(TARGETS, self.rows["train"]) if sample else None
        )
        self.labels: LabelVocabulary | None = None
        self.target_stats: dict[str, list[float]] = {}
        self._read_targets()
        for examples in self._distinct_examples():
            for file, table in zip(examples.files, examples.tables, strict=True):
                check_finite(file, table, INPUTS)
                check_finite(file, table, TARGETS)
        self.scaler: FeatureScaler | None = None
        if normalize and np.issubdtype(train.tables[0].inputs.dtype, np.floating):
            self.scaler = FeatureScaler.fit(train, self.rows["train"], len(self.categories))
        if normalize and self.target_type == "real":
            self.target_stats = self._fit_target_stats()
        self._dims = self._state_dims()

    @property
    def categories(self) -> list[int]:
        """The cardinality of each category-code input (the last inputs); none here."""
        return []

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

    def _distinct_examples(self) -> list[Examples]:
        """Each ``Examples`` once (fraction splits share one)."""
        return list({id(e): e for e in self.examples.values()}.values())

    def _read_targets(self) -> None:
        """Turn raw targets into class indices or float32 values, in place, as
        ``target_type`` says; the label vocabulary comes from the training rows only."""
        if self.target_type == "none":
            for examples in self._distinct_examples():
                for table in examples.tables:
                    table.targets = None
            return
        train = self.examples["train"]
        if train.tables[0].targets is None:
            raise DataConfigError(
                f"{train.files[0]}: has no targets but data.target_type={self.target_type}"
            )
        if self.target_type == "class":
            self.labels = LabelVocabulary.fit(train.values(TARGETS, self.rows["train"]))
        for examples in self._distinct_examples():
            for file, table in zip(examples.files, examples.tables, strict=True):
                assert table.targets is not None
                table.targets = (
                    self.labels.encode(table.targets, table.row_name, str(file))
                    if self.labels is not None
                    else real_values(table.targets, table.row_name, str(file))
                )

    def _fit_target_stats(self) -> dict[str, list[float]]:
        values = self.examples["train"].values(TARGETS, self.rows["train"]).astype(np.float64)
        values = values.reshape(len(values), -1)
        std = values.std(axis=0)
        return {
            "target_mean": values.mean(axis=0).tolist(),
            "target_std": np.where(std > 0, std, 1.0).tolist(),
        }

    def _state_dims(self) -> dict[str, Any]:
        """What models and tasks need, read off the data (and the reader's tokenizer)."""
        first = self.examples["train"].tables[0]
        dims: dict[str, Any] = {}
        inputs = first.inputs
        if np.issubdtype(inputs.dtype, np.integer):
            dims["seq_len"] = int(inputs.shape[1]) if inputs.ndim > 1 else 1
            tokenizer = getattr(self.reader, "tokenizer", None)
            dims["vocab_size"] = (
                int(tokenizer.vocab_size)
                if tokenizer is not None
                else 1
                + max(int(t.inputs[:].max()) for e in self._distinct_examples() for t in e.tables)
            )
        elif inputs.ndim == 2:
            dims["input_dim"] = int(inputs.shape[1])
            if self.categories:
                dims["categories"] = list(self.categories)
        if self.labels is not None:
            dims["num_classes"] = len(self.labels.names)
            dims["labels"] = list(self.labels.names)
        elif self.target_type == "real":
            targets = first.targets
            assert targets is not None
            dims["output_dim"] = 1 if targets.ndim == 1 else int(np.prod(targets.shape[1:]))
            dims.update(self.target_stats)
        return dims

    @property
    def dims(self) -> dict[str, Any]:
        return dict(self._dims)

    @property
    def data_facts(self) -> dict[str, Any]:
        """The ``dims`` and what a prediction on new files must repeat: how files were
        read, the fitted feature statistics, the label names and the target statistics."""
        state: dict[str, Any] = {**super().data_facts, "target_type": self.target_type}
        spec = getattr(self.reader, "spec", None)
        if spec is not None:
            state["reader"] = spec()
        if self.scaler is not None:
            state.update(self.scaler.state())
        if self.labels is not None:
            state["labels"] = list(self.labels.names)
        return {**state, **self.target_stats}

    def row_ids(self, split: str) -> list[tuple[str, str]]:
        """``(file, row id)`` of each example of ``split`` in the order it is predicted."""
        examples, dataset = self.examples[split], self.dataset(split)
        rows = np.concatenate([dataset.rows_of((0, i)) for i in range(self.num_batches(split))])
        which = np.searchsorted(examples.offsets, rows, side="right") - 1
        return [
            (str(examples.files[t]), examples.tables[t].row_id(int(r - examples.offsets[t])))
            for r, t in zip(rows, which, strict=True)
        ]

    def true_targets(self, split: str) -> list[str] | None:
        """The target of each example of ``split`` in ``row_ids`` order, as written in a
        predictions table (label names or values); None without one target per row."""
        examples, dataset = self.examples[split], self.dataset(split)
        if examples.tables[0].targets is None or examples.tables[0].targets.ndim != 1:
            return None
        rows = np.concatenate([dataset.rows_of((0, i)) for i in range(self.num_batches(split))])
        values = examples.values(TARGETS, rows)
        if self.labels is not None:
            return [self.labels.names[int(i)] for i in values]
        return [str(v) for v in values]  # float32's shortest text

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
            scaler=self.scaler,
        )
