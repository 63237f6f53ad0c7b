"""Readers: one per file format, each turning one file into a ``Table`` of examples.

A ``Table`` holds ``inputs`` (N, ...), ``targets`` (N, ...) and optional per-example
``extras`` (such as ``lengths``) as numpy arrays. ``.npy`` files are memory-mapped, so a
large file is never loaded whole: a batch reads only its own rows. Every error names
the file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hlt_data.batch import MASK, TARGETS
from hlt_data.columns import (
    RawTable,
    TableEncoder,
    arrow_of,
    flags,
    floats,
    is_text,
    joined,
    text_codes,
)
from hlt_data.errors import DataConfigError
from hlt_data.targets import TextLabels
from hlt_data.tokenizers import CharTokenizer

log = logging.getLogger(__name__)


class Rows(Protocol):
    """An inputs array as training reads it: a numpy array, or rows read from disk when
    asked for (``hlt_data.table_cache.NpyRows``)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype[Any]: ...

    @property
    def ndim(self) -> int: ...

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any) -> Any: ...


@dataclass
class Table:
    """The examples of one file: row ``i`` of every array is example ``i``.

    ``targets`` are raw as read (numbers, or strings for labels); the datamodule turns
    them into what the task needs. They are ``None`` for unlabelled data (language
    modelling). ``ids`` name the rows where the file does (FASTA records); ``numbers``
    where a table does (1-based data rows); otherwise rows are named by index.
    """

    inputs: Rows
    targets: np.ndarray | TextLabels | None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    columns: list[str] | None = None  # the input columns of a table file, to compare files
    ids: list[str] | None = None
    numbers: np.ndarray | None = None
    finite: bool = False  # inputs known finite (a TableEncoder's): not checked again

    def __len__(self) -> int:
        return len(self.inputs)

    def row_id(self, row: int) -> str:
        """Row ``row``'s id in a predictions table: record id, line number or row index."""
        if self.ids is not None:
            return self.ids[row]
        return str(self.numbers[row] if self.numbers is not None else row)

    def row_name(self, row: int) -> str:
        """Where row ``row`` is in its file, as a user would look for it."""
        if self.ids is not None:
            return f"record '{self.ids[row]}'"
        if self.numbers is not None:
            return f"row {self.numbers[row]}"
        return f"row {row}"


class Reader(Protocol):
    """Reads one file into a ``Table``; raises ``DataConfigError`` naming the file."""

    def __call__(self, path: Path) -> Table: ...


def _rows_agree(path: Path, table: Table) -> Table:
    for name, array in {TARGETS: table.targets, **table.extras}.items():
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


PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", *PARQUET_SUFFIXES)
BLOCK = 1 << 20  # bytes pyarrow parses at a time; a longer row is read with a larger block
# bytes a read with the types fixed parses at a time: fewer, larger chunks (each one's
# memory handed back once encoded) cost less kernel time (1M rows: 0.28 against 0.42
# system CPU-s, least of 4)
TYPED_BLOCK = 1 << 22


def _one_bad_row(path: Path, options: pacsv.ParseOptions) -> str:
    """Where a CSV's first ragged row is: read again as text on one thread, which numbers
    lines, a block at a time up to that row."""
    found: list[Any] = []

    def handler(row: Any) -> str:
        found.append(row)
        return "error"

    def stream(**convert: Any) -> pacsv.CSVStreamingReader:
        return pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=BLOCK),
            parse_options=pacsv.ParseOptions(
                delimiter=options.delimiter, invalid_row_handler=handler
            ),
            convert_options=pacsv.ConvertOptions(**convert),
        )

    with contextlib.suppress(pa.ArrowInvalid):
        with stream() as first:  # the column names (the header row is never ragged)
            names = first.schema.names
        found.clear()
        with stream(column_types=dict.fromkeys(names, pa.string())) as rows:
            for _ in rows:
                if found:
                    break
    if not found:
        return ""
    row = found[0]
    return (
        f" line {row.number}: {row.actual_columns} cells but the header has {row.expected_columns}"
    )


def unreadable(path: Path, error: OSError) -> DataConfigError:
    """An operating-system error opening or reading a data file, as one line naming it."""
    if isinstance(error, FileNotFoundError):
        return DataConfigError(f"{path}: no such file")
    return DataConfigError(f"{path}: cannot be read ({error})")


def csv_error(path: Path, message: str, options: pacsv.ParseOptions) -> DataConfigError:
    """pyarrow's error reading a CSV file as one line naming the file (and the line of
    the first ragged row)."""
    if message.startswith("Empty CSV file"):
        return DataConfigError(f"{path}: empty file (a header row is needed)")
    if "Expected" in message and "columns" in message:
        return DataConfigError(f"{path}{_one_bad_row(path, options)}")
    return DataConfigError(f"{path}: not a readable CSV file ({message})")


def read_csv(
    path: Path,
    delimiter: str = ",",
    columns: Sequence[str] | None = None,
    text: bool = False,
    first_block: pa.Schema | None = None,
) -> pa.Table:
    """A CSV file through pyarrow: a byte-order mark skipped, the standard NA spellings
    (empty, ``NA``, ``nan``, ...) null in every column, fields of any length; ``text``
    reads every column as strings.

    Column types are first taken from the file's first block (pyarrow's own inference;
    ``first_block``: ``table_schema``'s, read here if not given): with types fixed,
    pyarrow frees each block once converted, where inferring keeps every parsed block to
    convert again (twice the memory, and the time of handing it back). Text columns are
    then read coded by a dictionary (each row an index into the column's distinct texts,
    which is how categories and labels are read anyway). When a later block needs a
    wider type (a real among whole numbers, text among numbers) that read fails, and the
    file is read again inferring from every block: the values are always what whole-file
    inference gives."""
    parse = pacsv.ParseOptions(delimiter=delimiter)
    names = list(columns) if columns is not None else None
    types = None if text else first_block or _first_block(path, parse)
    if types is not None:
        fixed = {
            field.name: _coded(field.type)
            for field in types
            if names is None or field.name in names
        }
        with contextlib.suppress(pa.ArrowInvalid, OSError):  # read again below, inferring
            return _read_csv(path, parse, names, fixed, TYPED_BLOCK)
    return _read_csv_inferring(path, parse, names, text)


def _coded(kind: pa.DataType) -> pa.DataType:
    return pa.dictionary(pa.int32(), kind) if pa.types.is_string(kind) else kind


def _first_block(path: Path, parse: pacsv.ParseOptions) -> pa.Schema | None:
    """A CSV's columns with the types pyarrow infers from its first block; None where
    that block cannot be read (an empty or missing file, a row longer than a block: the
    whole read names the problem)."""
    try:
        with pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BLOCK, use_threads=False),
            parse_options=parse,
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
            memory_pool=csv_memory_pool(),
        ) as stream:
            return stream.schema
    except (pa.ArrowInvalid, OSError):
        return None


def _read_csv(
    path: Path,
    parse: pacsv.ParseOptions,
    names: list[str] | None,
    types: Mapping[str, pa.DataType] | None,
    block: int,
) -> pa.Table:
    convert = pacsv.ConvertOptions(
        strings_can_be_null=True, include_columns=names, column_types=types
    )
    pool = csv_memory_pool()
    with pa.OSFile(str(path), memory_pool=pool) as source:  # its reads in the same pool
        return pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=block),
            parse_options=parse,
            convert_options=convert,
            memory_pool=pool,
        )


@functools.cache
def csv_memory_pool() -> pa.MemoryPool:
    """jemalloc where this pyarrow has it, else pyarrow's default pool. Measured on
    Linux (a 1M-row, 182 MB CSV): the default, mimalloc, asks for transparent huge
    pages and hands freed pages back at once, which cost the read 0.2 to 1.3 s of
    kernel time from one process to the next; jemalloc (or the system's malloc) 0.2 s.

    jemalloc's freed pages go back to the system at once (decay 0; pyarrow's setting
    keeps them a second or more, and ``release_unused`` did not hand them back): the
    parse's own buffers, and the columns once encoded, then leave the process's peak.
    It applies to jemalloc alone, which pyarrow uses only where asked (as here)."""
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a build without jemalloc (Windows wheels)
        return pa.default_memory_pool()
    pa.jemalloc_set_decay_ms(0)
    return pool


def _read_csv_inferring(
    path: Path, parse: pacsv.ParseOptions, names: list[str] | None, text: bool
) -> pa.Table:
    """The whole-file read, with every error named for the user."""
    types = {name: pa.string() for name in names or []} if text else None
    block = BLOCK
    while True:
        try:
            return _read_csv(path, parse, names, types, block)
        except OSError as error:
            raise unreadable(path, error) from None
        except pa.ArrowInvalid as error:
            message = str(error)
            size = path.stat().st_size
            if "straddl" in message and block < size:  # one row longer than a block
                block = min(2 * size + 1, 2**31 - 1)
                continue
            raise csv_error(path, message, parse) from None


def table_schema(path: Path, delimiter: str = ",") -> pa.Schema:
    """The columns of a CSV or Parquet file, read without its rows, with their types (a
    CSV's as pyarrow infers them from its first block)."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            return pq.read_schema(path)
        except FileNotFoundError:
            raise DataConfigError(f"{path}: no such file") from None
        except (OSError, pa.ArrowException) as error:
            raise DataConfigError(f"{path}: unreadable Parquet file ({error})") from None
    schema = _first_block(path, pacsv.ParseOptions(delimiter=delimiter))
    # an empty file, a long first row, an unreadable file: the full read says which
    return schema if schema is not None else read_csv(path, delimiter).schema


def table_header(path: Path, delimiter: str = ",") -> list[str]:
    """The column names of a CSV or Parquet file, read without its rows."""
    return list(table_schema(path, delimiter).names)


def read_table_columns(
    path: Path, columns: Sequence[str], delimiter: str = ",", schema: pa.Schema | None = None
) -> pa.Table:
    """Only ``columns`` of a CSV or Parquet file, as Arrow columns (``schema``: a CSV's
    first block, from ``table_schema``)."""
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        return read_csv(path, delimiter, columns, first_block=schema)
    try:
        with pq.ParquetFile(path) as source:  # pq.read_table imports pandas (its datasets)
            return source.read(columns=list(columns))
    except (OSError, pa.ArrowException) as error:
        raise DataConfigError(f"{path}: unreadable Parquet file ({error})") from None


def check_utf8(path: Path, schema: pa.Schema) -> None:
    """Text columns must be UTF-8 (pyarrow reads other bytes as binary)."""
    binary = [field.name for field in schema if pa.types.is_binary(field.type)]
    if binary:
        raise DataConfigError(f"{path}: column(s) {binary} are not UTF-8 text")


def check_header(path: Path, header: list[str]) -> None:
    """Column names must be unique: a table with two ``a`` columns is ambiguous."""
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise DataConfigError(
            f"{path}: duplicate column name(s) {', '.join(map(repr, twice))}; "
            "rename them so that each column has one name"
        )


class TableReader:
    """A CSV file with a header row, or a Parquet file, read through pyarrow.

    ``target`` names the target column (or a list of columns; ``None`` reads features
    only, e.g. new data to predict on). Features are ``features`` if given, else every
    other column. ``read`` gives the raw Arrow columns; calling the reader gives a
    ``Table`` whose inputs the ``encoder`` fitted on the training split made
    (``hlt_data.columns``, as ``TableDataModule`` does); without one, every feature must
    be a number and no cell may be missing. Rows
    whose target is missing are dropped and counted; with ``target_required=False``
    (new data) a target column is read where the file has one and nothing is dropped.
    Rows are named by their 1-based data row (the header is not a row), the same in
    CSV and Parquet files and in predictions tables.
    """

    def __init__(
        self,
        target: str | Sequence[str] | None = "target",
        features: Sequence[str] | None = None,
        delimiter: str = ",",
        encoder: TableEncoder | None = None,
        target_required: bool = True,
    ) -> None:
        self.targets = (
            [] if target is None else [target] if isinstance(target, str) else list(target)
        )
        self.features = None if features is None else list(features)
        self.delimiter = delimiter
        self.encoder = encoder
        self.target_required = target_required
        # files read before the encoder was fitted (raw), or encoded already (a cache)
        self.pending: dict[Path, RawTable | Table] = {}

    def spec(self) -> dict[str, Any]:
        """How to read new files as this reader did (saved with the export)."""
        assert self.encoder is not None
        return {
            "format": "table",
            "target": self.targets,
            "features": self.encoder.features,
            "delimiter": self.delimiter,
            **self.encoder.state(),
        }

    def delimiter_of(self, path: Path) -> str:
        return "\t" if path.suffix.lower() == ".tsv" else self.delimiter

    def columns_of(self, path: Path, header: list[str]) -> tuple[list[str], list[str]]:
        """(features, targets) to read from a file with ``header``; all absent named."""
        targets = [c for c in self.targets if c in header or self.target_required]
        features = self.features or [c for c in header if c not in self.targets]
        absent = [f"target column '{c}' (data.target)" for c in targets if c not in header]
        absent += [f"feature column '{c}' (data.features)" for c in features if c not in header]
        if absent:
            raise DataConfigError(f"{path}: no {', no '.join(absent)}; columns: {header}")
        if not features:
            raise DataConfigError(f"{path}: no feature columns besides the target {targets}")
        return features, targets

    def read(self, path: Path) -> RawTable:
        """The file's feature and target columns; rows without a target dropped."""
        schema = table_schema(path, self.delimiter_of(path))
        check_header(path, schema.names)
        features, targets = self.columns_of(path, schema.names)
        table = read_table_columns(path, [*features, *targets], self.delimiter_of(path), schema)
        check_utf8(path, table.schema)
        numbers = np.arange(1, table.num_rows + 1)
        if targets and self.target_required:
            kept = self.kept_rows(path, table, targets)
            if not kept.all():
                table, numbers = table.filter(arrow_of(kept)), numbers[kept]
        if table.num_rows == 0:
            raise DataConfigError(f"{path}: no data rows")
        return RawTable(path, table, numbers, np.arange(table.num_rows))

    @staticmethod
    def kept_rows(path: Path, table: pa.Table, targets: Sequence[str]) -> np.ndarray:
        """Which rows have every target (the others are dropped, and counted in the log)."""
        missing = np.zeros(table.num_rows, dtype=bool)
        for name in targets:
            missing |= flags(pc.is_null(table.column(name), nan_is_null=True))
        if missing.any():
            dropped = np.flatnonzero(missing)
            log.warning(
                "%s: dropped %d row(s) with no target (rows %s%s)",
                path, len(dropped), ", ".join(str(row + 1) for row in dropped[:10]),
                " ..." if len(dropped) > 10 else "",
            )  # fmt: skip
        return ~missing

    def target_values(self, table: pa.Table) -> np.ndarray | TextLabels | None:
        """The target column(s) a table has, as numpy (None if it has none)."""
        present = [c for c in self.targets if c in table.column_names]
        if not present:
            return None
        arrays = [_target_values(table.column(c)) for c in present]
        return arrays[0] if len(arrays) == 1 else np.stack([np.asarray(a) for a in arrays], axis=1)

    def __call__(self, path: Path) -> Table:
        ready = self.pending.pop(path, None)
        if isinstance(ready, Table):  # encoded already (a table cache)
            return ready
        raw = ready if ready is not None else self.read(path)
        encoder, targets = self._encoder(raw.table), self.target_values(raw.table)
        return _encoded_table(encoder, encoder.encode_whole(raw), targets, raw.numbers)

    def encoded(
        self,
        path: Path,
        table: pa.Table,
        numbers: np.ndarray,
        unseen: dict[str, dict[str, int]] | None = None,
    ) -> Table:
        """``table``'s rows (data rows ``numbers`` of ``path``) as a ``Table``: features
        encoded, targets as read; ``unseen`` as ``TableEncoder.encode`` counts it."""
        encoder = self._encoder(table)
        inputs = encoder.encode(path, table, numbers, unseen)
        return _encoded_table(encoder, inputs, self.target_values(table), numbers)

    def _encoder(self, table: pa.Table) -> TableEncoder:
        features = [c for c in table.column_names if c not in self.targets]
        return self.encoder or TableEncoder.numeric(features)


def _encoded_table(
    encoder: TableEncoder,
    inputs: np.ndarray,
    targets: np.ndarray | TextLabels | None,
    numbers: np.ndarray,
) -> Table:
    return Table(inputs, targets, columns=encoder.names, numbers=numbers, finite=True)


def _target_values(column: pa.ChunkedArray) -> np.ndarray | TextLabels:
    """A target column as numpy: numbers as they are (missing: NaN), text as each row's
    index into its distinct values (``TextLabels``: no string per row) unless cells are
    missing (then strings and None)."""
    kind = column.type
    if is_text(kind):
        codes, words = text_codes(column)
        if column.null_count:
            return np.array([*words.to_pylist(), None], dtype=object)[codes]
        return TextLabels(codes, np.array(words.to_pylist(), dtype=str))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return floats(column) if column.null_count else joined(column)
    if pa.types.is_boolean(kind) and not column.null_count:
        return flags(column)
    return np.array(column.to_pylist(), dtype=object)


LONG_RECORDS = ("error", "crop", "window")  # what SequenceReader does with a long record


def read_label_table(path: str | Path) -> dict[str, str]:
    """Record id -> label from a CSV with columns ``id`` and ``label``."""
    path = Path(path)
    header = table_header(path)
    for column in ("id", "label"):
        if column not in header:
            raise DataConfigError(f"{path}: no column '{column}' (data.labels; columns: {header})")
    table = read_csv(path, columns=["id", "label"], text=True)
    return dict(zip(table.column("id").to_pylist(), table.column("label").to_pylist(), strict=True))


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
        return Table(tokens, targets, {MASK: mask}, ids=[e[1] for e in examples])
