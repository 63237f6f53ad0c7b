"""Readers: one per file format, each turning one file into a ``Table`` of examples.

A ``Table`` holds ``inputs`` (N, ...), ``targets`` (N, ...) and optional per-example
``extras`` (such as ``lengths``) as numpy arrays. ``.npy`` files are memory-mapped, so a
large file is never loaded whole: a batch reads only its own rows. Every error names
the file.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from hlt_data.errors import DataConfigError
from hlt_data.tokenizers import CharTokenizer

IGNORE_INDEX = -100  # per-position targets that do not count (padding)


@dataclass
class Table:
    """The examples of one file: row ``i`` of every array is example ``i``."""

    inputs: np.ndarray
    targets: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    columns: list[str] | None = None  # the input columns of a table file, to compare files

    def __len__(self) -> int:
        return len(self.inputs)


class Reader(Protocol):
    """Reads one file into a ``Table``; raises ``DataConfigError`` naming the file."""

    def __call__(self, path: Path) -> Table: ...


def _rows_agree(path: Path, table: Table) -> Table:
    for name, array in {"targets": table.targets, **table.extras}.items():
        if len(array) != len(table.inputs):
            raise DataConfigError(
                f"{path}: {name} has {len(array)} rows but inputs have {len(table.inputs)}"
            )
    return table


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DataConfigError(f"{path}: no such file") from None
    except (OSError, ValueError) as error:
        raise DataConfigError(f"{path}: unreadable or corrupt .npy file ({error})") from None
    if array.ndim == 0:
        raise DataConfigError(f"{path}: holds a scalar, expected one row per example")
    return array


class NpyReader:
    """A pair of memory-mapped ``.npy`` files: inputs, and targets beside them.

    The getter lists the inputs files; each file's targets are the file whose name has
    the last ``inputs`` tag replaced by the ``targets`` tag, for example
    ``train.inputs.npy`` -> ``train.targets.npy`` or ``inputs.npy`` -> ``targets.npy``.
    """

    def __init__(self, inputs: str = "inputs", targets: str = "targets") -> None:
        self.inputs_tag = inputs
        self.targets_tag = targets

    def targets_path(self, path: Path) -> Path:
        head, tag, tail = path.name.rpartition(self.inputs_tag)
        if not tag:
            raise DataConfigError(
                f"{path}: name lacks the inputs tag '{self.inputs_tag}' that locates its "
                f"targets file (data.reader.inputs)"
            )
        return path.with_name(head + self.targets_tag + tail)

    def __call__(self, path: Path) -> Table:
        targets = self.targets_path(path)
        return _rows_agree(path, Table(_load_npy(path), _load_npy(targets)))


class NpzReader:
    """An ``.npz`` archive holding arrays ``inputs_key`` and ``targets_key``.

    Archives are compressed or zipped, so their arrays are read whole, one file at a
    time; keep very large data in ``.npy`` pairs, which are memory-mapped.
    """

    def __init__(self, inputs_key: str = "inputs", targets_key: str = "targets") -> None:
        self.keys = (inputs_key, targets_key)

    def __call__(self, path: Path) -> Table:
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = [key for key in self.keys if key not in archive.files]
                if missing:
                    raise DataConfigError(
                        f"{path}: no array {missing[0]!r} (it holds {archive.files})"
                    )
                inputs, targets = (archive[key] for key in self.keys)
        except FileNotFoundError:
            raise DataConfigError(f"{path}: no such file") from None
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise DataConfigError(f"{path}: unreadable or corrupt .npz file ({error})") from None
        return _rows_agree(path, Table(inputs, targets))


def _target_array(values: np.ndarray, dtype: str, path: Path) -> np.ndarray:
    if dtype == "auto":
        dtype = "int64" if np.all(np.mod(values, 1) == 0) else "float32"
    if dtype not in ("int64", "float32"):
        raise DataConfigError(f"data.reader.target_dtype={dtype!r}: use auto, int64 or float32")
    return values.astype(dtype)


class CsvReader:
    """A ``.csv`` file with a header row; ``target_columns`` are the targets.

    Inputs are ``feature_columns`` (default: every other column), as float32. Targets
    are int64 when ``target_dtype`` is ``int64`` (or ``auto`` and all whole numbers),
    else float32; a single target column gives targets of shape (N,).
    """

    def __init__(
        self,
        target_columns: list[str] | str = "target",
        feature_columns: list[str] | None = None,
        delimiter: str = ",",
        target_dtype: str = "auto",
    ) -> None:
        self.target_columns = (
            [target_columns] if isinstance(target_columns, str) else list(target_columns)
        )
        self.feature_columns = None if feature_columns is None else list(feature_columns)
        self.delimiter = delimiter
        self.target_dtype = target_dtype

    def __call__(self, path: Path) -> Table:
        try:
            with open(path, newline="") as handle:
                header = next(csv.reader(handle, delimiter=self.delimiter), [])
        except OSError as error:
            raise DataConfigError(f"{path}: cannot be read ({error.strerror})") from None
        except UnicodeDecodeError:
            raise DataConfigError(f"{path}: not a text .csv file") from None
        header = [name.strip() for name in header]
        features = self.feature_columns or [c for c in header if c not in self.target_columns]
        for column in [*self.target_columns, *features]:
            if column not in header:
                raise DataConfigError(f"{path}: no column '{column}' (columns: {header})")
        try:
            values = np.loadtxt(
                path,
                delimiter=self.delimiter,
                skiprows=1,
                ndmin=2,
                dtype=np.float64,
                usecols=[header.index(c) for c in [*features, *self.target_columns]],
            )
        except ValueError as error:
            raise DataConfigError(f"{path}: bad value ({error})") from None
        targets = _target_array(values[:, len(features) :], self.target_dtype, path)
        if targets.shape[1] == 1:
            targets = targets[:, 0]
        inputs = values[:, : len(features)].astype(np.float32)
        return Table(inputs, targets, columns=features)


class SequenceReader:
    """Text or FASTA sequences, tokenized and padded to ``seq_len``.

    A FASTA file has records ``>header`` then sequence lines; any other file holds one
    sequence per non-empty line. ``inputs`` are token ids (N, seq_len), padded with 0
    and cut at ``seq_len``; ``extras["lengths"]`` are the unpadded lengths. Targets:
    with ``label_key``, the integer after ``label_key=`` in each FASTA header (N,);
    otherwise next-token targets (N, seq_len) with ``-100`` where nothing follows.
    """

    def __init__(
        self, tokenizer: CharTokenizer, seq_len: int = 128, label_key: str | None = None
    ) -> None:
        if seq_len < 1:
            raise DataConfigError(f"data.reader.seq_len must be >= 1, got {seq_len}")
        self.tokenizer = tokenizer
        self.seq_len = seq_len
        self.label_key = label_key

    def records(self, path: Path) -> list[tuple[str, str]]:
        try:
            lines = path.read_text().splitlines()
        except OSError as error:
            raise DataConfigError(f"{path}: cannot be read ({error.strerror})") from None
        except UnicodeDecodeError:
            raise DataConfigError(f"{path}: not a text or FASTA file") from None
        if not any(line.startswith(">") for line in lines):
            return [("", line.strip()) for line in lines if line.strip()]
        records: list[tuple[str, list[str]]] = []
        for line in lines:
            if line.startswith(">"):
                records.append((line[1:].strip(), []))
            elif line.strip():
                if not records:
                    raise DataConfigError(f"{path}: sequence before the first '>' header")
                records[-1][1].append(line.strip())
        return [(header, "".join(parts)) for header, parts in records]

    def label(self, path: Path, header: str) -> int:
        for word in header.split():
            key, _, value = word.partition("=")
            if key == self.label_key:
                try:
                    return int(value)
                except ValueError:
                    break
        raise DataConfigError(
            f"{path}: header '>{header}' lacks an integer '{self.label_key}=' label"
        )

    def __call__(self, path: Path) -> Table:
        records = self.records(path)
        n, width = len(records), self.seq_len
        tokens = np.zeros((n, width + 1), dtype=np.int64)
        available = np.zeros(n, dtype=np.int64)  # tokens kept, up to seq_len + 1
        for row, (_, sequence) in enumerate(records):
            ids = self.tokenizer.encode(sequence[: width + 1])
            tokens[row, : len(ids)] = ids
            available[row] = len(ids)
        inputs, lengths = tokens[:, :width], np.minimum(available, width)
        if self.label_key is not None:
            targets = np.array([self.label(path, h) for h, _ in records], dtype=np.int64)
        else:
            targets = tokens[:, 1:].copy()
            targets[np.arange(width) >= available[:, None] - 1] = IGNORE_INDEX
        return Table(inputs, targets, {"lengths": lengths})
