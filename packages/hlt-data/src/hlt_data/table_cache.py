"""A Parquet table larger than memory: encoded once, batch by batch, into a row file that
training reads a few rows at a time.

Reading a 10M-row table whole would hold its Arrow columns and its float32 inputs in
memory at once; here the file is never whole in memory. Fitting reads one column at a
time (the training rows' median or vocabulary); encoding streams ``BATCH_ROWS`` rows at
a time into ``inputs.npy`` with plain writes; training reads each batch's rows from it
with ``os.pread`` (``NpyRows``, ``hlt_data.pread``), so the process holds a batch, not
the file: a memory map would count every page an epoch touched as the process's own.

The cache is a folder beside the Parquet file (``<file>.hlt-cache``) or, where that
folder cannot be written, under ``cache_dir`` (default ``~/.cache/hlt/tables``), as
genome caches are (``hlt_data.genome_cache.cache_folder``). It holds

- ``inputs.npy``: the (rows, inputs) float32 inputs, as ``TableEncoder`` makes them;
- ``targets.npy``: the raw targets (labels as text), one per kept row;
- ``numbers.npy``: each kept row's 1-based data row in the file (rows without a target
  are dropped, as in memory; ``dropped.npy`` marks them);
- ``index.json``: the source's size and modification time, the settings that shaped the
  inputs (target, features, categorical, missing, split fractions and seed), the fitted
  encoder and the warnings the build logged (repeated when the cache is reused).

It is rebuilt when any of these differ; a build writes a fresh folder and renames it
into place, so an interrupted build leaves no half cache.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hlt_data.columns import RawTable, TableEncoder, arrow_of, log_unseen
from hlt_data.errors import DataConfigError
from hlt_data.genome_cache import cache_folder, source_stamp
from hlt_data.pread import OffsetFile
from hlt_data.readers import PARQUET_SUFFIXES, Table, TableReader, check_header, table_header
from hlt_data.splits import split_indices

log = logging.getLogger(__name__)

VERSION = 1  # of the cache layout; a cache of another version is rebuilt
BATCH_ROWS = 1 << 18  # rows read, encoded and written at a time
CACHE_CELLS = 50_000_000  # data.cache=auto: a Parquet file of more cells is cached
CACHE_CHOICES = ("auto", True, False)


def wants_cache(cache: str | bool, files: Sequence[Path]) -> bool:
    """Whether ``data.cache`` reads these files through a table cache: ``auto`` for one
    Parquet file of more than ``CACHE_CELLS`` cells, ``true`` for one Parquet file."""
    if cache not in CACHE_CHOICES:
        raise DataConfigError(f"data.cache={cache!r} must be auto, true or false")
    parquet = len(files) == 1 and files[0].suffix.lower() in PARQUET_SUFFIXES
    if cache is True and not parquet:
        raise DataConfigError(
            f"data.cache=true reads one Parquet file, not {len(files)} file(s) such as "
            f"{files[0]}; convert a large table to Parquet (pyarrow.parquet.write_table)"
        )
    if cache != "auto" or not parquet:
        return bool(cache) and parquet
    try:
        metadata = pq.ParquetFile(files[0]).metadata
    except (OSError, pa.ArrowException) as error:
        raise DataConfigError(f"{files[0]}: unreadable Parquet file ({error})") from None
    return bool(metadata.num_rows * metadata.num_columns > CACHE_CELLS)


class NpyRows:
    """The rows of a 2-D ``.npy`` file, read from disk when asked for (``os.pread``).

    Indexing with sorted rows or a slice gives a numpy array of those rows: a dense set
    of rows is read as one span, scattered rows as one read per run of neighbours. The
    file is opened at once; a pickled copy (a spawned loader worker's) opens its own.
    """

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(handle)
            self.offset = handle.tell()
        if fortran or len(shape) != 2:
            raise DataConfigError(f"{path}: not a row-major 2-D array; delete the cache folder")
        self.shape, self.dtype, self.ndim = tuple(shape), dtype, 2
        self.row_bytes = dtype.itemsize * shape[1]
        self.file = OffsetFile(path)
        self.file.fd()  # now: a cache another process rebuilds later leaves this file readable

    def __len__(self) -> int:
        return int(self.shape[0])

    def _read(self, start: int, stop: int) -> bytes:
        size = (stop - start) * self.row_bytes
        return self.file.read(self.offset + start * self.row_bytes, size)

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            rows = np.arange(start, stop, step)
        else:
            rows = np.asarray(key, dtype=np.int64)
        if len(rows) == 0:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        low, high = int(rows.min()), int(rows.max()) + 1
        if high - low <= 4 * len(rows):  # dense: one read, then pick the rows
            span = np.frombuffer(self._read(low, high), self.dtype).reshape(-1, self.shape[1])
            return span[rows - low]
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts, ends = rows[np.r_[0, breaks]], rows[np.r_[breaks - 1, len(rows) - 1]] + 1
        data = b"".join(self._read(int(s), int(e)) for s, e in zip(starts, ends, strict=True))
        return np.frombuffer(data, self.dtype).reshape(-1, self.shape[1]).copy()


class ParquetColumns:
    """A Parquet file's kept rows one column at a time, as fitting the encoder reads them
    (``RawTable.table`` for a file too large to read whole)."""

    def __init__(self, path: Path, kept: np.ndarray) -> None:
        self.path, self.kept = path, kept
        self.num_rows = int(kept.sum())
        self.schema = pq.read_schema(path)

    def column(self, name: str) -> pa.ChunkedArray:
        """The column's kept rows, read a row group at a time (a whole-column read
        buffers the file's column chunks besides the values: twice the memory)."""
        pa.default_memory_pool().release_unused()  # the last column's, back to the system
        parquet = pq.ParquetFile(self.path, pre_buffer=False)
        chunks, start = [], 0
        for group in range(parquet.num_row_groups):
            part = parquet.read_row_group(group, columns=[name]).column(0)
            kept = self.kept[start : start + len(part)]
            start += len(part)
            chunks += (part if kept.all() else part.filter(arrow_of(kept))).chunks
        return pa.chunked_array(chunks, type=parquet.schema_arrow.field(name).type)


def _settings(
    reader: TableReader,
    fractions: Mapping[str, float],
    split_seed: int,
    categorical: Sequence[str],
    missing: str,
) -> dict[str, Any]:
    return {
        "target": reader.targets,
        "features": reader.features,
        "categorical": list(categorical),
        "missing": missing,
        "split_fractions": {k: float(v) for k, v in sorted(fractions.items())},
        "split_seed": split_seed,
    }


class _Warnings(logging.Handler):
    """The warnings a build logs, kept to repeat when the cache is reused."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _build(
    path: Path, folder: Path, reader: TableReader, settings: dict[str, Any]
) -> dict[str, Any]:
    """Fit the encoder on the training rows and write the cache into ``folder``."""
    header = table_header(path)
    check_header(path, header)
    features, targets = reader.columns_of(path, header)
    _save_targets(path, folder, reader, targets)
    kept = ~np.load(folder / "dropped.npy")
    numbers = np.flatnonzero(kept) + 1
    if len(numbers) == 0:
        raise DataConfigError(f"{path}: no data rows")
    np.save(folder / "numbers.npy", numbers, allow_pickle=False)
    train = split_indices(len(numbers), settings["split_fractions"], settings["split_seed"])
    columns = RawTable(path, ParquetColumns(path, kept), numbers, train["train"])
    encoder = TableEncoder.fit(
        [columns], features, settings["categorical"], settings["missing"], threads=1
    )
    pa.default_memory_pool().release_unused()  # the columns fitting read, back to the system
    unseen: dict[str, dict[str, int]] = {}
    done, written = 0, 0
    with open(folder / "inputs.npy", "wb") as out:
        header_fields = {"descr": "<f4", "fortran_order": False}
        shape = (len(numbers), len(encoder.names))
        np.lib.format.write_array_header_1_0(out, {**header_fields, "shape": shape})
        # pre_buffer=False: pre-buffered reads keep every batch's buffers until the end
        parquet = pq.ParquetFile(path, pre_buffer=False)
        batches = parquet.iter_batches(BATCH_ROWS, columns=[*features, *targets])
        for batch in batches:
            table = pa.Table.from_batches([batch])
            mine = kept[done : done + table.num_rows]
            done += table.num_rows
            table = table if mine.all() else table.filter(arrow_of(mine))
            rows = numbers[written : written + table.num_rows]
            written += table.num_rows
            out.write(encoder.encode(path, table, rows, unseen).data)
    pa.default_memory_pool().release_unused()
    for name, counts in unseen.items():
        log_unseen(path, name, counts)
    return {"encoder": encoder.state()}


def _save_targets(path: Path, folder: Path, reader: TableReader, targets: list[str]) -> None:
    """The raw targets of the rows that have them (``targets.npy``) and which rows have
    none (``dropped.npy``), read before the features so that only one is in memory."""
    with pq.ParquetFile(path) as source:
        table = source.read(columns=targets)
    kept = TableReader.kept_rows(path, table, targets)
    np.save(folder / "dropped.npy", ~kept, allow_pickle=False)
    values = reader.target_values(table if kept.all() else table.filter(arrow_of(kept)))
    assert values is not None  # columns_of required the targets
    np.save(folder / "targets.npy", np.asarray(values), allow_pickle=False)


def _read_index(folder: Path, path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The cache's index if it is current for ``path`` and ``settings``, else None."""
    try:
        index = json.loads((folder / "index.json").read_text())
    except (OSError, ValueError):
        return None
    current = {"version": VERSION, "source": source_stamp(path), "settings": settings}
    return index if all(index.get(key) == value for key, value in current.items()) else None


def _write(path: Path, folder: Path, reader: TableReader, settings: dict[str, Any]) -> None:
    """Build the cache aside, then rename it into place."""
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    except OSError as error:
        raise DataConfigError(
            f"data.path={path}: cannot write its cache in {folder.parent} "
            f"({error.strerror or error}); set data.cache_dir to a writable folder"
        ) from None
    warnings = _Warnings()
    logging.getLogger("hlt_data").addHandler(warnings)
    try:
        source = source_stamp(path)
        built = _build(path, tmp, reader, settings)
        index = {"version": VERSION, "source": source, "settings": settings, **built}
        (tmp / "index.json").write_text(json.dumps({**index, "warnings": warnings.lines}))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        logging.getLogger("hlt_data").removeHandler(warnings)
        shutil.rmtree(tmp, ignore_errors=True)


def cached_table(
    path: Path,
    reader: TableReader,
    fractions: Mapping[str, float],
    split_seed: int,
    categorical: Sequence[str],
    missing: str,
    cache_dir: str | Path | None,
) -> Table:
    """``path``'s table from its cache (built, or rebuilt, first if need be), with
    ``reader.encoder`` set to the encoder fitted when it was built."""
    folder = cache_folder(path, cache_dir, "tables")
    settings = _settings(reader, fractions, split_seed, categorical, missing)
    index = _read_index(folder, path, settings)
    if index is None:
        log.info("%s: encoding the table into its cache %s", path, folder)
        _write(path, folder, reader, settings)
        index = _read_index(folder, path, settings)
        assert index is not None
    else:
        for line in index["warnings"]:
            log.warning("%s (read from the cache %s)", line, folder)
    reader.encoder = TableEncoder.from_state(index["encoder"])
    return Table(
        NpyRows(folder / "inputs.npy"),
        np.load(folder / "targets.npy", allow_pickle=False),
        columns=reader.encoder.names,
        numbers=np.load(folder / "numbers.npy", mmap_mode="r", allow_pickle=False),
        finite=True,
    )
