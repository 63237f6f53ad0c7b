"""New table files read a part at a time, for ``hlt predict`` on files larger than memory.

Training reads a table whole, or streams a large Parquet file into its cache
(``hlt_data.table_cache``); a file to predict on is read once, so it is streamed here:
Parquet by record batches, CSV through pyarrow's streaming reader. Each part is encoded
by the fitted encoder as the whole file would be (``TableReader.encoded``): the same
inputs, target values and 1-based row numbers (an error in the middle of a file names
its row), with the categories unseen in training counted over the whole file and logged
once. Nothing is dropped: new files are read as ``prediction_reader`` reads them.

A CSV file states no types: pyarrow infers each column's from its cells, the first type
in pyarrow's order (``CSV_TYPES``) that reads every cell. Read whole, that order is
applied to the whole column; streamed, to the first block only, and a later block that
does not fit is refused. The column then takes the next type in that order and the file
has to be read again from its start (``Reread``): the parts handed out so far were read
at a type the whole file would not have (a category written ``01`` read as the number
``1``). What was learned is kept, so the second reading goes through; a file whose types
are settled in its first block (the usual case) is read once.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hlt_data.columns import log_unseen
from hlt_data.errors import DataConfigError
from hlt_data.readers import (
    BLOCK,
    PARQUET_SUFFIXES,
    Reader,
    Table,
    TableReader,
    check_header,
    check_utf8,
    csv_error,
    table_header,
    unreadable,
)

READ_ROWS = 1 << 16  # rows of a Parquet file read and encoded at a time
CSV_BLOCK = BLOCK  # bytes of a CSV file read and encoded at a time
# pyarrow's CSV type inference: a column is the first of these that reads all its cells
CSV_TYPES = (
    pa.null(),
    pa.int64(),
    pa.bool_(),
    pa.date32(),
    pa.time32("s"),
    pa.timestamp("s"),
    pa.timestamp("ns"),
    pa.float64(),
    pa.string(),
    pa.binary(),
)
CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error(?:.*: invalid value '(.*)'$)?")


class Reread(Exception):
    """A file has to be read again from its start: a CSV column's type, or the block
    that holds its longest row, turned out larger than its first block showed."""


class TableParts:
    """The parts of a table file as ``reader`` (fitted, ``target_required=False``) reads
    them, ``rows`` rows of a Parquet file or a ``block`` of bytes of a CSV file at a time.
    It keeps the CSV column types and block sizes learned from each file it read."""

    def __init__(self, reader: TableReader, rows: int, block: int) -> None:
        if reader.target_required:
            raise ValueError("TableParts reads new files: nothing is dropped")
        self.reader, self.rows, self.block = reader, rows, block
        self.types: dict[Path, dict[str, pa.DataType]] = {}
        self.blocks: dict[Path, int] = {}

    def __call__(self, path: Path) -> Iterator[Table]:
        delimiter = self.reader.delimiter_of(path)
        header = table_header(path, delimiter)
        check_header(path, header)
        columns = [name for part in self.reader.columns_of(path, header) for name in part]
        parquet = path.suffix.lower() in PARQUET_SUFFIXES
        batches = (
            self._parquet(path, columns) if parquet else self._csv(path, header, columns, delimiter)
        )
        unseen: dict[str, dict[str, int]] = {}
        done = 0
        for batch in batches:
            if batch.num_rows == 0:
                continue
            table = pa.Table.from_batches([batch])
            check_utf8(path, table.schema)
            numbers = np.arange(done + 1, done + table.num_rows + 1)
            done += table.num_rows
            yield self.reader.encoded(path, table, numbers, unseen)
        if done == 0:
            raise DataConfigError(f"{path}: no data rows")
        for name, counts in unseen.items():
            log_unseen(path, name, counts)

    def _parquet(self, path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
        try:
            # pre_buffer=False: pre-buffered reads keep every batch's buffers until the end
            parquet = pq.ParquetFile(path, pre_buffer=False)
            yield from parquet.iter_batches(self.rows, columns=columns)
        except (OSError, pa.ArrowException) as error:
            raise DataConfigError(f"{path}: unreadable Parquet file ({error})") from None

    def _csv(
        self, path: Path, header: list[str], columns: list[str], delimiter: str
    ) -> Iterator[pa.RecordBatch]:
        types = self.types.setdefault(path, {})
        block = self.blocks.get(path, self.block)
        parse = pacsv.ParseOptions(delimiter=delimiter)
        read: pa.Schema | None = None  # the types the stream read at
        try:
            with pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=block),
                parse_options=parse,
                convert_options=pacsv.ConvertOptions(
                    strings_can_be_null=True, include_columns=columns, column_types=types
                ),
            ) as stream:
                read = stream.schema
                yield from stream
        except OSError as error:
            raise unreadable(path, error) from None
        except pa.ArrowInvalid as error:
            message = str(error)
            if "straddl" in message and block < path.stat().st_size:  # a row beyond a block
                self.blocks[path] = min(2 * block, 2**31 - 1)
                raise Reread(f"{path}: a row longer than {block} bytes") from None
            changed = CONVERSION.search(message)
            name = header[int(changed.group(1))] if changed else ""
            if changed and _loosen(types, name, read, changed.group(2)):
                raise Reread(f"{path}: column '{name}' holds more than its first block") from None
            raise csv_error(path, message, parse) from None


def _loosen(
    types: dict[str, pa.DataType], name: str, read: pa.Schema | None, cell: str | None
) -> bool:
    """Give column ``name`` a later type than it was read at, one that reads ``cell``
    where pyarrow named it (the types between would refuse it); False when none is left."""
    now = types.get(name) or (read.field(name).type if read is not None else None)
    if now not in CSV_TYPES:
        return False
    later = CSV_TYPES.index(now) + 1
    kind = _type_of(cell) if cell is not None else None
    if kind in CSV_TYPES:
        later = max(later, CSV_TYPES.index(kind))
    if later == len(CSV_TYPES):
        return False
    types[name] = CSV_TYPES[later]
    return True


def _type_of(cell: str) -> pa.DataType:
    """The type pyarrow infers for a column holding ``cell`` alone."""
    quoted = '"' + cell.replace('"', '""') + '"'
    one = io.BytesIO(f"cell\n{quoted}\n".encode())
    convert = pacsv.ConvertOptions(strings_can_be_null=True)
    return pacsv.read_csv(one, convert_options=convert).schema.field(0).type


def in_batches(parts: Iterable[Table], size: int) -> Iterator[Table]:
    """The rows of ``parts`` as tables of ``size`` rows (the last one shorter), however
    the parts were cut: a file read a part at a time gives the batches of the whole file,
    so a model sees the same batches (and gives the same numbers, to the last bit)."""
    held: list[Table] = []
    count = 0
    for part in parts:
        start = 0
        while start < len(part):
            stop = min(len(part), start + size - count)
            held.append(_rows(part, start, stop))
            count += stop - start
            start = stop
            if count == size:
                yield _joined(held)
                held, count = [], 0
    if held:
        yield _joined(held)


def _rows(table: Table, start: int, stop: int) -> Table:
    """Rows ``start:stop`` of ``table`` (views where its arrays allow), named as in
    ``table``: rows named by their index keep it as their number."""
    if start == 0 and stop == len(table):
        return table
    numbers = table.numbers if table.numbers is not None or table.ids else np.arange(len(table))
    return Table(
        table.inputs[start:stop],
        None if table.targets is None else table.targets[start:stop],
        {name: array[start:stop] for name, array in table.extras.items()},
        table.columns,
        None if table.ids is None else table.ids[start:stop],
        None if numbers is None else numbers[start:stop],
        table.finite,
    )


def _joined(tables: list[Table]) -> Table:
    """The rows of ``tables`` one after another, as one table."""
    if len(tables) == 1:
        return tables[0]
    first = tables[0]

    def joined(arrays: list[Any]) -> Any:
        return None if arrays[0] is None else np.concatenate(arrays)

    return Table(
        np.concatenate([t.inputs for t in tables]),
        joined([t.targets for t in tables]),
        {name: np.concatenate([t.extras[name] for t in tables]) for name in first.extras},
        first.columns,
        None if first.ids is None else [i for t in tables for i in t.ids or []],
        joined([t.numbers for t in tables]),
        all(t.finite for t in tables),
    )


def parts_of(reader: Reader) -> Callable[[Path], Iterator[Table]]:
    """How ``hlt predict`` reads ``reader``'s files: tables a part at a time
    (``TableParts``), the other formats whole (``.npy`` files are memory-mapped)."""
    if isinstance(reader, TableReader):
        return TableParts(reader, READ_ROWS, CSV_BLOCK)
    return lambda path: iter([reader(path)])
