"""Readers: one per file format, each turning one file into a ``Table`` of examples.

A ``Table`` holds ``inputs`` (N, ...), ``targets`` (N, ...) and optional per-example
``extras`` (such as ``lengths``) as numpy arrays. ``.npy`` files are memory-mapped, so a
large file is never loaded whole: a batch reads only its own rows. Every error names
the file.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hlt_data.errors import DataConfigError
from hlt_data.tokenizers import CharTokenizer


@dataclass
class Table:
    """The examples of one file: row ``i`` of every array is example ``i``.

    ``targets`` are raw as read (numbers, or strings for labels); the datamodule turns
    them into what the task needs. They are ``None`` for unlabelled data (language
    modelling). ``ids`` name the rows where the file does (FASTA records); otherwise
    rows are named by ``first_line + i`` (a table's line number, after its header).
    """

    inputs: np.ndarray
    targets: np.ndarray | None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    columns: list[str] | None = None  # the input columns of a table file, to compare files
    ids: list[str] | None = None
    first_line: int | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    def row_id(self, row: int) -> str:
        """Row ``row``'s id in a predictions table: record id, line number or row index."""
        if self.ids is not None:
            return self.ids[row]
        return str(row + (self.first_line or 0))

    def row_name(self, row: int) -> str:
        """Where row ``row`` is in its file, as a user would look for it."""
        if self.ids is not None:
            return f"record '{self.ids[row]}'"
        if self.first_line is not None:
            return f"line {row + self.first_line}"
        return f"row {row}"


class Reader(Protocol):
    """Reads one file into a ``Table``; raises ``DataConfigError`` naming the file."""

    def __call__(self, path: Path) -> Table: ...


def _rows_agree(path: Path, table: Table) -> Table:
    for name, array in {"targets": table.targets, **table.extras}.items():
        if array is not None and len(array) != len(table.inputs):
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


def check_numeric(path: Path, inputs: np.ndarray) -> np.ndarray:
    """Inputs a model can train on: real, integer or boolean numbers."""
    if not (np.issubdtype(inputs.dtype, np.number) or inputs.dtype == np.bool_) or np.iscomplexobj(
        inputs
    ):
        raise DataConfigError(
            f"{path}: inputs of dtype {inputs.dtype} cannot be trained on; "
            "use real, integer or boolean numbers"
        )
    return inputs


class NpyReader:
    """A pair of memory-mapped ``.npy`` files: inputs, and targets beside them.

    The getter lists the inputs files; each file's targets are the file whose name has
    the last ``inputs`` tag replaced by the ``targets`` tag, for example
    ``train.inputs.npy`` -> ``train.targets.npy`` or ``inputs.npy`` -> ``targets.npy``.
    With ``targets=None`` only inputs are read (new data to predict on).
    """

    def __init__(self, inputs: str = "inputs", targets: str | None = "targets") -> None:
        self.inputs_tag = inputs
        self.targets_tag = targets

    def spec(self) -> dict[str, Any]:
        """How to read new files as this reader did (saved with the export)."""
        return {"format": "npy", "inputs": self.inputs_tag}

    def targets_path(self, path: Path, targets: str) -> Path:
        head, tag, tail = path.name.rpartition(self.inputs_tag)
        if not tag:
            raise DataConfigError(
                f"{path}: name lacks the inputs tag '{self.inputs_tag}' that locates its "
                f"targets file (data.reader.inputs)"
            )
        return path.with_name(head + targets + tail)

    def __call__(self, path: Path) -> Table:
        inputs = check_numeric(path, _load_npy(path))
        if self.targets_tag is None:
            return Table(inputs, None)
        return _rows_agree(
            path, Table(inputs, _load_npy(self.targets_path(path, self.targets_tag)))
        )


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
        return _rows_agree(path, Table(check_numeric(path, inputs), targets))


def _numbers(path: Path, column: str, values: np.ndarray, first_line: int) -> np.ndarray:
    """A table column as float64; the first cell that is not a number is named."""
    if np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_:
        return values.astype(np.float64)
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        for row, cell in enumerate(values):
            try:
                float(cell)
            except (TypeError, ValueError):
                what = "an empty cell" if cell in ("", None) else f"{str(cell)!r} is not a number"
                raise DataConfigError(
                    f"{path} line {row + first_line} column '{column}': {what}"
                ) from None
        raise


def _read_csv(path: Path, delimiter: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """Header and columns (as strings) of a CSV file; short or long rows are named."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle, delimiter=delimiter))
    except OSError as error:
        raise DataConfigError(f"{path}: cannot be read ({error.strerror})") from None
    except (UnicodeDecodeError, csv.Error):
        raise DataConfigError(f"{path}: not a text .csv file") from None
    if not rows:
        raise DataConfigError(f"{path}: empty file (a header row is needed)")
    header = [name.strip() for name in rows[0]]
    body = [row for row in rows[1:] if row]
    for line, row in enumerate(rows[1:], start=2):
        if row and len(row) != len(header):
            raise DataConfigError(
                f"{path} line {line}: {len(row)} cells but the header has {len(header)}"
            )
    cells = np.array(body, dtype=str).reshape(len(body), len(header))
    return header, {name: np.char.strip(cells[:, i]) for i, name in enumerate(header)}


def _read_parquet(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataConfigError(
            f"{path}: reading Parquet needs pyarrow: pip install 'hlt-data[parquet]'"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ...
        raise DataConfigError(f"{path}: unreadable Parquet file ({error})") from None
    return list(table.column_names), {
        name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names
    }


PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", *PARQUET_SUFFIXES)


class TableReader:
    """A CSV file with a header row, or a Parquet file (with pyarrow installed).

    ``target`` names the target column (or a list of columns; ``None`` reads features
    only, e.g. new data to predict on). Features are ``features`` if given, else every
    other column; each must hold numbers, and the first cell that does not is named by
    line and column. Targets are kept as read (strings or numbers): the datamodule reads
    them as the task needs (class labels or real values).
    """

    def __init__(
        self,
        target: str | Sequence[str] | None = "target",
        features: Sequence[str] | None = None,
        delimiter: str = ",",
    ) -> None:
        self.targets = (
            [] if target is None else [target] if isinstance(target, str) else list(target)
        )
        self.features = None if features is None else list(features)
        self.delimiter = delimiter

    def spec(self) -> dict[str, Any]:
        """How to read new files as this reader did (the datamodule adds the features)."""
        return {"format": "table", "features": self.features, "delimiter": self.delimiter}

    def __call__(self, path: Path) -> Table:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            header, columns, first_line = *_read_parquet(path), 0
        else:
            delimiter = "\t" if path.suffix.lower() == ".tsv" else self.delimiter
            header, columns, first_line = *_read_csv(path, delimiter), 2
        for column in self.targets:
            if column not in header:
                raise DataConfigError(
                    f"{path}: no target column '{column}' (data.target; columns: {header})"
                )
        features = self.features or [c for c in header if c not in self.targets]
        for column in features:
            if column not in header:
                raise DataConfigError(
                    f"{path}: no feature column '{column}' (data.features; columns: {header})"
                )
        if not features:
            raise DataConfigError(f"{path}: no feature columns besides the target {self.targets}")
        rows = len(columns[header[0]]) if header else 0
        if rows == 0:
            raise DataConfigError(f"{path}: no data rows")
        inputs = np.stack(
            [_numbers(path, name, columns[name], first_line) for name in features], axis=1
        ).astype(np.float32)
        targets = None
        if self.targets:
            targets = np.stack([columns[name] for name in self.targets], axis=1)
            targets = targets[:, 0] if len(self.targets) == 1 else targets
        return Table(inputs, targets, columns=features, first_line=first_line)


LONG_RECORDS = ("error", "crop", "window")  # what SequenceReader does with a long record


def read_label_table(path: str | Path) -> dict[str, str]:
    """Record id -> label from a CSV with columns ``id`` and ``label``."""
    header, columns = _read_csv(Path(path), ",")
    for column in ("id", "label"):
        if column not in header:
            raise DataConfigError(f"{path}: no column '{column}' (data.labels; columns: {header})")
    return dict(zip(columns["id"].tolist(), columns["label"].tolist(), strict=True))


class SequenceReader:
    """FASTA records (``>id ...`` then sequence lines) or text (one sequence a line).

    ``inputs`` are token ids (N, seq_len) padded with 0; a record longer than ``seq_len``
    is, as ``long_records`` says, an error naming it (``error``), cut to its first
    ``seq_len`` characters (``crop``), or cut into examples of ``seq_len`` characters,
    the last one padded, each with the record's label and an id ``record:start-end``
    (1-based, inclusive: ``window``). ``extras["mask"]`` is True at real tokens, the one
    padding convention that sequence tasks and pooling decoders honour. A character
    outside the tokenizer's alphabet is an error naming file, record and position.
    Labels (raw strings) come from the header word ``label_key=value`` or, with
    ``label_table``, from the record id (the header's first word); with neither the data
    is unlabelled (language modelling).
    """

    def __init__(
        self,
        tokenizer: CharTokenizer,
        seq_len: int = 128,
        label_key: str | None = None,
        label_table: Mapping[str, str] | None = None,
        long_records: str = "error",
    ) -> None:
        # check, then keep: the shape of FileDataModule's constructor, nothing to share
        if seq_len < 1:
            raise DataConfigError(f"data.seq_len must be >= 1, got {seq_len}")
        if long_records not in LONG_RECORDS:
            raise DataConfigError(
                f"data.long_records={long_records!r} must be one of {', '.join(LONG_RECORDS)}"
            )
        self.tokenizer = tokenizer
        self.seq_len = seq_len
        self.label_key = label_key
        self.label_table = label_table
        self.long_records = long_records

    @staticmethod
    def records(path: Path) -> list[tuple[str, str]]:
        """``(header, sequence)`` pairs; plain text lines are records ``line_N``."""
        try:
            lines = path.read_text().splitlines()
        except OSError as error:
            raise DataConfigError(f"{path}: cannot be read ({error.strerror})") from None
        except UnicodeDecodeError:
            raise DataConfigError(f"{path}: not a text or FASTA file") from None
        if not any(line.startswith(">") for line in lines):
            return [(f"line_{i}", s.strip()) for i, s in enumerate(lines, 1) if s.strip()]
        records: list[tuple[str, list[str]]] = []
        for line in lines:
            if line.startswith(">"):
                records.append((line[1:].strip(), []))
            elif line.strip():
                if not records:
                    raise DataConfigError(f"{path}: sequence before the first '>' header")
                records[-1][1].append(line.strip())
        return [(header, "".join(parts)) for header, parts in records]

    def spec(self) -> dict[str, Any]:
        """How to read new files as this reader did (saved with the export)."""
        return {
            "format": "fasta",
            "alphabet": self.tokenizer.alphabet,
            "case_sensitive": self.tokenizer.case_sensitive,
            "seq_len": self.seq_len,
            "long_records": self.long_records,
        }

    @property
    def labelled(self) -> bool:
        return self.label_key is not None or self.label_table is not None

    def label(self, path: Path, header: str) -> str:
        record = header.split()[0] if header.split() else header
        if self.label_table is not None:
            if record not in self.label_table:
                raise DataConfigError(f"{path} record '{record}': no label in data.labels")
            return self.label_table[record]
        for word in header.split():
            key, _, value = word.partition("=")
            if key == self.label_key and value:
                return value
        raise DataConfigError(f"{path} record '{record}': header lacks '{self.label_key}=<label>'")

    def encode(self, path: Path, record: str, sequence: str, offset: int = 0) -> np.ndarray:
        """Token ids of ``sequence``, which starts at ``offset`` in ``record``."""
        ids = self.tokenizer.encode(sequence)
        unknown = np.flatnonzero(ids == self.tokenizer.UNKNOWN)
        if len(unknown):
            position = int(unknown[0])
            raise DataConfigError(
                f"{path} record '{record}' position {offset + position + 1}: "
                f"{sequence[position]!r} is not in the alphabet "
                f"'{self.tokenizer.alphabet}' (data.alphabet)"
            )
        return ids

    def pieces(self, path: Path, record: str, sequence: str) -> list[tuple[str, int, str]]:
        """``(id, offset, part)`` of the examples one record makes (``long_records``)."""
        if len(sequence) <= self.seq_len or self.long_records == "crop":
            return [(record, 0, sequence[: self.seq_len])]
        if self.long_records == "error":
            raise DataConfigError(
                f"{path} record '{record}': {len(sequence):,} characters, longer than "
                f"data.seq_len={self.seq_len}; set data.long_records=crop (keep the first "
                f"{self.seq_len}) or window (cut it into examples of {self.seq_len}), or use "
                "data=genome for genome-scale sequences"
            )
        return [
            (f"{record}:{start + 1}-{min(start + self.seq_len, len(sequence))}", start, part)
            for start in range(0, len(sequence), self.seq_len)
            for part in (sequence[start : start + self.seq_len],)
        ]

    def __call__(self, path: Path) -> Table:
        records = self.records(path)
        if not records:
            raise DataConfigError(f"{path}: no sequences")
        examples: list[tuple[str, str, str, int, str]] = []  # header, id, record, offset, part
        for i, (header, sequence) in enumerate(records):
            record = header.split()[0] if header.split() else f"{i}"
            examples += [
                (header, name, record, offset, part)
                for name, offset, part in self.pieces(path, record, sequence)
            ]
        tokens = np.zeros((len(examples), self.seq_len), dtype=np.int64)
        mask = np.zeros((len(examples), self.seq_len), dtype=np.bool_)
        for row, (_, _, record, offset, part) in enumerate(examples):
            encoded = self.encode(path, record, part, offset)
            tokens[row, : len(encoded)] = encoded
            mask[row, : len(encoded)] = True
        targets = None
        if self.labelled:
            labels = {header: self.label(path, header) for header, _ in records}
            targets = np.array([labels[header] for header, *_ in examples], dtype=str)
        return Table(tokens, targets, {"mask": mask}, ids=[e[1] for e in examples])
