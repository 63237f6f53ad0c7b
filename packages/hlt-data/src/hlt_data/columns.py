"""Typed table columns, fitted on the training split and applied to every file.

A feature column is ``numeric``, ``boolean`` (``True/False``, ``yes/no``: 0/1) or
``categorical`` (text, or numbers named in ``data.categorical``). What each column is,
its training median (to fill missing numbers), whether it gets a missing-indicator
input, and its category vocabulary are fitted on the training rows only and saved as
plain JSON (``TableEncoder.state``), so new files are read exactly as training read them.

The inputs of a table are float32 columns in this order: numeric and boolean columns
(missing cells filled with the training median), one 0/1 indicator per column that had
missing cells in training, then one category code per categorical column. Code 0 means
"unseen in training", code 1 "missing", codes 2.. the training categories in sorted
order; models embed the codes (``dims.categories`` gives each column's cardinality).
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hlt_data.errors import DataConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

MISSING_POLICIES = ("impute", "error")
KINDS = ("numeric", "boolean", "categorical")
UNSEEN, MISSING = 0, 1  # the two codes every categorical column has before its categories
BLOCK_ROWS = 1 << 13  # rows written at a time (a block of inputs fits a core's cache)
FLOAT32_MAX = float(np.finfo(np.float32).max)
BOOLEAN_WORDS = {"false": 0.0, "no": 0.0, "true": 1.0, "yes": 1.0}
ZERO_ONE = {"0": 0.0, "1": 1.0}  # a boolean column that pyarrow read as numbers
NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
THREADS = min(4, os.cpu_count() or 1)  # columns fitted or encoded at once
MOSTLY_NUMBERS = 0.9  # a text column this much numbers is a numeric column with typos


@dataclass
class Column:
    """One feature column as training read it."""

    name: str
    kind: str
    fill: float = 0.0  # numeric, boolean: the training median, for missing cells
    indicator: bool = False  # numeric, boolean: a 0/1 "was missing" input follows
    categories: list[str] | None = None  # categorical: the training vocabulary, sorted

    @property
    def cardinality(self) -> int:
        """Codes of a categorical column: unseen, missing, then its categories."""
        return 2 + len(self.categories or [])


@dataclass
class RawTable:
    """One file's columns as read (Arrow, no copy into Python objects): ``numbers`` is
    the 1-based data row of each table row in its file (rows without a target are
    dropped, so they can differ from positions); ``rows`` are the rows a fit reads."""

    path: Path
    table: pa.Table
    numbers: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return self.table.num_rows


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def is_text(kind: pa.DataType) -> bool:
    """Strings, or strings coded by a dictionary (how ``read_csv`` reads text)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _text(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Values as strings, exactly as written: whole numbers without a decimal point."""
    if is_text(values.type):
        return values
    if pa.types.is_floating(values.type):
        whole = pc.equal(values, pc.floor(values))
        ints = pc.cast(
            pc.if_else(whole, values, pa.nulls(1, values.type)[0]), pa.int64(), safe=False
        )
        return pc.if_else(whole, pc.cast(ints, pa.string()), pc.cast(values, pa.string()))
    return pc.cast(values, pa.string())


def _dtype(kind: pa.DataType) -> np.dtype[Any]:
    """The numpy dtype of an Arrow number type (``to_pandas_dtype`` imports pandas)."""
    letter = "f" if pa.types.is_floating(kind) else "i" if pa.types.is_signed_integer(kind) else "u"
    return np.dtype(f"{letter}{kind.bit_width // 8}")


def _view(chunk: pa.Array) -> np.ndarray:
    """An Arrow array of numbers without nulls as a numpy view of its data buffer.

    pyarrow's own conversions (``to_numpy``, and ``pa.array``, ``pa.scalar`` the other
    way) import pandas where it is installed: 27 MB more in a training process (45 MB
    in a bare one) and its import time. Here and below, arrays cross between Arrow and
    numpy as buffers."""
    dtype = _dtype(chunk.type)
    return np.frombuffer(chunk.buffers()[1], dtype, len(chunk), chunk.offset * dtype.itemsize)


def joined(values: pa.ChunkedArray | pa.Array, dtype: Any = None) -> np.ndarray:
    """A column of numbers without nulls as one writable numpy array (of ``dtype``, else
    its own): views of Arrow's chunks, joined."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    arrays = [_view(chunk) for chunk in chunks if len(chunk)]
    if not arrays:
        return np.empty(0, dtype or _dtype(values.type))
    return np.concatenate(arrays).astype(dtype or arrays[0].dtype, copy=False)


def arrow_of(values: np.ndarray) -> pa.Array:
    """A 1-D numpy array of numbers or booleans as an Arrow array (numbers: over the same
    memory), built from its buffers (``_view``)."""
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        bits = pa.py_buffer(np.packbits(values, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, bits])
    kind = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def arrow_strings(words: Sequence[str]) -> pa.Array:
    """Python strings as an Arrow string array, built from its buffers (as ``arrow_of``)."""
    encoded = [word.encode() for word in words]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.large_string(), len(encoded), buffers).cast(pa.string())


def _scalar(value: float, dtype: Any) -> pa.Scalar:
    return arrow_of(np.array([value], dtype=dtype))[0]


def floats(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Numbers (or booleans) as float64, missing cells NaN."""
    if pa.types.is_null(values.type):
        return np.full(len(values), np.nan)
    return joined(pc.fill_null(values.cast(pa.float64()), _scalar(np.nan, np.float64)))


def flags(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Booleans as numpy, missing cells False."""
    filled = pc.fill_null(values, _scalar(False, np.bool_))
    return joined(filled.cast(pa.uint8())).view(np.bool_)


def text_codes(values: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """A text column as each row's index into its distinct texts (-1: missing), and those
    texts: the column's own dictionary where it was read as one, else Arrow's hashing of
    it. What depends on the texts alone (a vocabulary, booleans, numbers, label names) is
    then worked out once per distinct text, not once per row."""
    coded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    chunked = coded if isinstance(coded, pa.ChunkedArray) else pa.chunked_array([coded])
    chunked = chunked.unify_dictionaries()
    kind = chunked.type
    words = chunked.chunk(0).dictionary if chunked.num_chunks else pa.nulls(0, kind.value_type)
    indices = pa.chunked_array([c.indices for c in chunked.chunks], type=kind.index_type)
    return joined(pc.fill_null(indices, _scalar(-1, _dtype(kind.index_type)))), words


def _per_text(codes: np.ndarray, values: np.ndarray, missing: Any = np.nan) -> np.ndarray:
    """Each row's value, from its text's (``text_codes``); ``missing`` where it has none."""
    return np.append(values, np.array(missing, dtype=values.dtype))[codes]


def _nulls(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Missing cells: nulls, and NaN in float columns (Parquet keeps NaN apart from null)."""
    return flags(pc.is_null(values, nan_is_null=True))


def _real_chunks(raw: pa.ChunkedArray) -> list[np.ndarray] | None:
    """The common case, read in place: a column of reals with no missing cell, as numpy
    views of Arrow's chunks, when every value is finite and within float32's range (two
    reductions a chunk, no temporaries); None where it holds anything else (missing or
    infinite cells, values beyond float32's range), which the full reading names."""
    if not pa.types.is_floating(raw.type) or raw.null_count:
        return None
    chunks = [_view(chunk) for chunk in raw.chunks if len(chunk)]
    for chunk in chunks:
        low, high = float(chunk.min()), float(chunk.max())  # NaN if any is NaN
        if not -FLOAT32_MAX <= low <= high <= FLOAT32_MAX:
            return None
    return chunks


class _Chunks:
    """One input column as numpy arrays end to end (Arrow's chunks, or one array), from
    which rows are copied into the row-major inputs."""

    def __init__(self, arrays: Sequence[np.ndarray]) -> None:
        self.arrays: list[np.ndarray | None] = list(arrays)
        self.starts = np.cumsum([0] + [len(a) for a in arrays]).tolist()

    def copy_into(self, block: np.ndarray, j: int, start: int, own: tuple[int, int]) -> None:
        """Rows ``start:start + len(block)`` of this column into column ``j`` of ``block``;
        an array lying within rows ``own`` (the caller's alone) is let go once copied."""
        stop, at = start + len(block), start
        i = bisect.bisect_right(self.starts, start) - 1
        while at < stop:
            first, last = self.starts[i], self.starts[i + 1]
            end = min(stop, last)
            array = self.arrays[i]
            assert array is not None
            block[at - start : end - start, j] = array[at - first : end - first]
            if end == last and own[0] <= first and last <= own[1]:
                self.arrays[i] = None
            at, i = end, i + 1


def _fill_rows(out: np.ndarray, sources: Sequence[_Chunks], start: int, stop: int) -> None:
    """Rows ``start:stop`` of ``out``, every column of a cache-sized block of rows at a
    time: each source is read once in order and each row written while in cache."""
    for first in range(start, stop, BLOCK_ROWS):
        block = out[first : min(first + BLOCK_ROWS, stop)]
        for j, source in enumerate(sources):
            source.copy_into(block, j, first, (start, stop))


def _filled(sources: Sequence[_Chunks], rows: int) -> np.ndarray:
    """The (rows, inputs) float32 inputs, ``THREADS`` ranges of rows at once."""
    out = np.empty((rows, len(sources)), dtype=np.float32)
    parts = np.linspace(0, rows, THREADS + 1).astype(int)
    _each_column(lambda i: _fill_rows(out, sources, parts[i], parts[i + 1]), range(THREADS))
    return out


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


class TableEncoder:
    """Feature columns in, float32 inputs out, as fitted on the training rows."""

    def __init__(self, columns: Sequence[Column], missing: str = "impute") -> None:
        if missing not in MISSING_POLICIES:
            raise DataConfigError(
                f"data.missing={missing!r} is unknown; choose one of {list(MISSING_POLICIES)}"
            )
        self.columns = list(columns)
        self.missing = missing

    # --- fitting ---------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        parts: Sequence[RawTable],
        features: Sequence[str],
        categorical: Sequence[str] = (),
        missing: str = "impute",
        threads: int = THREADS,
    ) -> TableEncoder:
        """Each feature's type, median and vocabulary from the training rows of ``parts``,
        ``threads`` columns at a time; every column that cannot be read is named in one
        error."""
        unknown = sorted(set(categorical) - set(features))
        if unknown:
            raise DataConfigError(
                f"data.categorical names {unknown}, which are not feature columns "
                f"(features: {list(features)})"
            )

        def fit_one(name: str) -> Column | str:
            reals = None if name in categorical else _training_reals(parts, name)
            if reals is not None:
                return _with_fill(Column(name, "numeric"), reals)
            try:
                return cls._fit_column(name, _training_values(parts, name), name in categorical)
            except DataConfigError as error:
                return str(error)

        columns, problems, text = [], [], []
        schema = parts[0].table.schema
        for column in _each_column(
            fit_one, features, threads, lambda name: is_text(schema.field(name).type)
        ):
            if isinstance(column, str):
                problems.append(column)
                continue
            name = column.name
            if column.kind == "categorical" and name not in categorical and missing == "error":
                text.append(name)
            columns.append(column)
        if text:
            problems.append(
                f"column(s) {', '.join(map(repr, text))} hold text: data.missing=error reads "
                "numbers only; drop data.missing=error to read them as categories"
            )
        if problems:
            raise DataConfigError(f"{parts[0].path} " + "; ".join(problems))
        return cls(columns, missing)

    @staticmethod
    def _fit_column(name: str, train: pa.ChunkedArray, categorical: bool) -> Column:
        if categorical or pa.types.is_null(train.type):
            present = pc.drop_null(train)
            categories = pc.unique(_text(present)).to_pylist() if len(present) else []
            return Column(name, "categorical", categories=sorted(categories))
        if pa.types.is_boolean(train.type):
            return _with_fill(Column(name, "boolean"), floats(train))
        if _is_numeric(train.type):
            return _with_fill(Column(name, "numeric"), floats(train))
        if not is_text(train.type):
            raise DataConfigError(f"column '{name}' holds {train.type}, not numbers or text")
        codes, texts = text_codes(train)
        counts = np.bincount(codes[codes >= 0], minlength=len(texts))
        seen = np.flatnonzero(counts)  # each distinct text once, with its rows
        distinct, rows = texts.take(arrow_of(seen)), counts[seen]
        words = set(pc.utf8_lower(distinct).to_pylist())
        if words and words <= set(BOOLEAN_WORDS):
            return _with_fill(Column(name, "boolean"), _booleans(train))
        numeric = flags(pc.match_substring_regex(distinct, NUMBER))
        if rows[numeric].sum() < MOSTLY_NUMBERS * rows.sum():
            return Column(name, "categorical", categories=sorted(distinct.to_pylist()))
        # numbers, perhaps with a few typos, which reading the column will name by row
        numbers = pc.utf8_trim_whitespace(distinct.filter(arrow_of(numeric)))
        values = np.repeat(floats(pc.cast(numbers, pa.float64())), rows[numeric])
        return _with_fill(Column(name, "numeric"), values)

    # --- applying ----------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The input columns in order: values, missing indicators, category codes."""
        values = [c.name for c in self.columns if c.kind != "categorical"]
        indicators = [f"{c.name} (missing)" for c in self.columns if c.indicator]
        return values + indicators + [c.name for c in self.columns if c.kind == "categorical"]

    @property
    def categories(self) -> list[int]:
        """The cardinality of each category-code input, in order (the last inputs)."""
        return [c.cardinality for c in self.columns if c.kind == "categorical"]

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.columns]

    def encode(
        self,
        path: Path,
        table: pa.Table,
        numbers: np.ndarray,
        unseen: dict[str, dict[str, int]] | None = None,
    ) -> np.ndarray:
        """``table``'s features as the (rows, inputs) float32 array, every value finite;
        every column with a cell that cannot be read is named in one error (file, row,
        column). Categories unseen in training are logged, or counted into ``unseen``
        (column -> category -> rows) when the caller logs them for a file encoded in
        parts."""
        return _filled(self._sources(path, table, numbers, unseen), len(table))

    def encode_whole(self, raw: RawTable) -> np.ndarray:
        """``encode`` of a whole file's columns, which ``raw`` hands over: each of Arrow's
        chunks is let go once its rows are copied (its memory goes back to the system:
        ``readers.csv_memory_pool``), so the peak holds the columns or the inputs, not
        both."""
        table, raw.table = raw.table, raw.table.select([])
        rows, sources = len(table), self._sources(raw.path, table, raw.numbers, None)
        del table
        return _filled(sources, rows)

    def _sources(
        self,
        path: Path,
        table: pa.Table,
        numbers: np.ndarray,
        unseen: dict[str, dict[str, int]] | None,
    ) -> list[_Chunks]:
        """Each input column of ``table`` as arrays, in the order of the inputs."""
        values = [c.name for c in self.columns if c.kind != "categorical"]
        flagged = [c.name for c in self.columns if c.indicator]
        codes = [c.name for c in self.columns if c.kind == "categorical"]
        slot = {name: i for i, name in enumerate(values)}
        slot.update({name: len(values) + len(flagged) + i for i, name in enumerate(codes)})
        flag = {name: len(values) + i for i, name in enumerate(flagged)}
        width = len(values) + len(flagged) + len(codes)
        # each input column as arrays (Arrow's own buffers where a column needs no
        # change), then copied into the row-major inputs a block of rows at a time
        sources: list[_Chunks | None] = [None] * width
        rows = len(table)

        def encode_one(column: Column) -> str | None:
            raw, j = table.column(column.name), slot[column.name]
            missing = None
            try:
                if column.kind == "categorical":
                    arrays = [self._codes(path, column, raw, numbers, unseen)]
                else:
                    arrays = _real_chunks(raw) or []
                    if not arrays:
                        array, missing = self._values(column, raw, numbers)
                        filled = array if missing is None else np.where(missing, column.fill, array)
                        arrays = [filled]
            except DataConfigError as error:
                return str(error)
            sources[j] = _Chunks(arrays)
            if column.indicator:
                flags = np.broadcast_to(np.False_, (rows,)) if missing is None else missing
                sources[flag[column.name]] = _Chunks([flags])
            return None

        def first(column: Column) -> bool:
            return column.kind == "categorical" or is_text(table.schema.field(column.name).type)

        problems = [p for p in _each_column(encode_one, self.columns, first=first) if p]
        if problems:
            raise DataConfigError(f"{path} " + "; ".join(problems))
        ready = [source for source in sources if source is not None]
        assert len(ready) == width
        return ready

    def _values(
        self, column: Column, raw: pa.ChunkedArray, numbers: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Numbers (as read) and the missing mask of one column (None: nothing missing)."""
        if column.kind == "boolean" and not pa.types.is_boolean(raw.type):
            array = _booleans(raw, column.name, numbers)
        elif is_text(raw.type):
            array = _parse(raw, column.name, numbers)
        else:
            array = floats(raw)
        beyond = np.abs(array) > FLOAT32_MAX  # infinite, or infinite once float32
        if beyond.any():
            row = _first(beyond)
            why = (
                "infinite values are not numbers a model can read"
                if np.isinf(array[row])
                else "beyond float32's range, in which inputs are kept"
            )
            raise DataConfigError(
                f"row {numbers[row]} column '{column.name}': {array[row]} ({why}; fix or "
                "drop the row)"
            )
        missing = np.isnan(array)
        if not missing.any():
            return array, None
        if self.missing == "error":
            raise DataConfigError(
                f"row {numbers[_first(missing)]} column '{column.name}': a missing value "
                f"(empty or NA; {int(missing.sum())} in the column; drop data.missing=error "
                "to fill them with the training median)"
            )
        return array, missing

    def _codes(
        self,
        path: Path,
        column: Column,
        raw: pa.ChunkedArray,
        numbers: np.ndarray,
        unseen: dict[str, dict[str, int]] | None,
    ) -> np.ndarray:
        """Category codes; categories unseen in training are counted, logged, coded 0."""
        rows, texts = text_codes(_text(raw))
        known = floats(pc.index_in(texts, value_set=arrow_strings(column.categories or [])))
        unknown = np.isnan(known)
        codes = _per_text(rows, np.where(unknown, UNSEEN, known + 2).astype(np.float32))
        missing = _nulls(raw)  # nulls, and NaN (whose text is "nan")
        if missing.any() and self.missing == "error":
            raise DataConfigError(
                f"row {numbers[_first(missing)]} column '{column.name}': a missing value "
                "(empty or NA; drop data.missing=error to read it as its own category)"
            )
        codes[missing] = MISSING
        counts = np.bincount(rows[~missing], minlength=len(texts))
        new = np.flatnonzero(unknown & (counts > 0))  # in the order they first occur
        if len(new):
            found = dict(
                zip(texts.take(arrow_of(new)).to_pylist(), counts[new].tolist(), strict=True)
            )
            if unseen is None:
                log_unseen(path, column.name, found)
            else:  # one file encoded in parts: the caller logs the whole file's once
                into = unseen.setdefault(column.name, {})
                for name, count in found.items():
                    into[name] = into.get(name, 0) + count
        return codes

    # --- saving ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Plain JSON: how to read new files as training did."""
        return {"missing": self.missing, "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TableEncoder:
        columns = []
        for entry in state["columns"]:
            if not isinstance(entry, dict) or entry.get("kind") not in KINDS:
                raise DataConfigError(f"a saved column of unknown kind: {entry!r}")
            columns.append(Column(**entry))
        return cls(columns, state.get("missing", "impute"))

    @classmethod
    def numeric(cls, features: Sequence[str]) -> TableEncoder:
        """Every feature a number, none missing: how runs before typed columns read."""
        return cls([Column(name, "numeric") for name in features], "error")


def _each_column(
    function: Callable[[T], R],
    items: Sequence[T],
    threads: int = THREADS,
    first: Callable[[T], bool] | None = None,
) -> list[R]:
    """``function`` of each item, results in order, on a few threads: the work is numpy's
    and Arrow's, which release the GIL, so columns are read side by side. The ``first``
    items (text columns: several times a number column's work) start first, so that no
    thread is left alone with one at the end."""
    order = sorted(range(len(items)), key=lambda i: not first(items[i])) if first else None
    with ThreadPoolExecutor(max(1, min(threads, len(items)))) as pool:
        if order is None:
            return list(pool.map(function, items))
        done = dict(zip(order, pool.map(lambda i: function(items[i]), order), strict=True))
    return [done[i] for i in range(len(items))]


def log_unseen(path: Path, name: str, counts: Mapping[str, int]) -> None:
    """One warning for the categories of column ``name`` unseen in training (by rows)."""
    log.warning(
        "%s column '%s': %d row(s) hold %d categor%s unseen in training (%s); "
        "they read as 'unseen'",
        path, name, sum(counts.values()), len(counts),
        "y" if len(counts) == 1 else "ies", ", ".join(map(repr, list(counts)[:5])),
    )  # fmt: skip


def _training_reals(parts: Sequence[RawTable], name: str) -> np.ndarray | None:
    """The common case of ``_training_values``, in numpy: a column of reals without a
    null in every file, its training rows taken from its chunks' buffers (half the time
    of Arrow's take and conversion); None for any other column."""
    columns = [p.table.column(name) for p in parts]
    if not all(pa.types.is_floating(c.type) and not c.null_count for c in columns):
        return None
    taken = [joined(c, np.float64)[p.rows] for c, p in zip(columns, parts, strict=True)]
    return np.concatenate(taken) if len(taken) > 1 else taken[0]


def _training_values(parts: Sequence[RawTable], name: str) -> pa.ChunkedArray:
    """A column's training rows from every file, at one type (files may differ: one
    file's whole numbers and another's reals are reals, anything with text is text)."""
    arrays = [p.table.column(name).take(arrow_of(p.rows)) for p in parts]
    types = {a.type for a in arrays if not pa.types.is_null(a.type)}
    if len(types) > 1:
        common = pa.float64() if all(_is_numeric(t) for t in types) else pa.string()
        arrays = [a.cast(common) if not pa.types.is_string(a.type) else a for a in arrays]
    kind = arrays[0].type if len(types) != 1 else types.pop()
    return pa.chunked_array([c for a in arrays for c in a.cast(kind).chunks], type=kind)


def _with_fill(column: Column, values: np.ndarray) -> Column:
    """A numeric or boolean column with its training median and indicator fitted, from
    its training values (float64, missing NaN; an array of its own: the median reorders
    it)."""
    finite = np.isfinite(values)
    whole = bool(finite.all())
    column.indicator = not whole and bool(np.isnan(values).any())
    finite_values = values if whole else values[finite]
    column.fill = _median(finite_values) if len(finite_values) else 0.0
    return column


def _median(finite: np.ndarray) -> float:
    """``np.median`` of finite values, reordering them: one partition, where np.median
    also partitions around the last element to look for NaN (five times slower)."""
    half = len(finite) // 2
    finite.partition(half)
    if len(finite) % 2:
        return float(finite[half])
    return float(np.mean(np.array([finite[:half].max(), finite[half]])))


def _parse(raw: pa.ChunkedArray, name: str, numbers: np.ndarray) -> np.ndarray:
    """Text that holds numbers, as float64 (missing: NaN); the first cell that does not
    is named. Each distinct text is trimmed, matched and parsed once (a dictionary may
    hold texts no row has any more: rows filtered out)."""
    rows, texts = text_codes(raw)
    trimmed = pc.utf8_trim_whitespace(texts)
    number = flags(pc.match_substring_regex(trimmed, NUMBER))
    bad = np.flatnonzero(_per_text(rows, ~number, False))
    if len(bad):
        raise DataConfigError(
            f"row {numbers[bad[0]]} column '{name}': {trimmed[int(rows[bad[0]])].as_py()!r} is "
            "not a number (fix the cell, or name the column in data.categorical to read it "
            "as categories)"
        )
    values = np.full(len(texts), np.nan)
    values[number] = floats(pc.cast(trimmed.filter(arrow_of(number)), pa.float64()))
    return _per_text(rows, values)


def _booleans(
    raw: pa.ChunkedArray, name: str = "", numbers: np.ndarray | None = None
) -> np.ndarray:
    """``true/false/yes/no`` (any case) as 1.0/0.0 (missing: NaN); another word is named.
    Numbers are read as pyarrow reads a CSV column of booleans: 1 and 0 (a new file's
    boolean column of 0/1 cells arrives as numbers)."""
    meaning = ZERO_ONE if _is_numeric(raw.type) else BOOLEAN_WORDS
    words = list(meaning)
    rows, texts = text_codes(_text(raw))
    lowered = texts if _is_numeric(raw.type) else pc.utf8_lower(texts)
    index = floats(pc.index_in(lowered, value_set=arrow_strings(words)))
    bad = np.flatnonzero(_per_text(rows, np.isnan(index), False))
    if len(bad):
        where = f"row {numbers[bad[0]]} " if numbers is not None else ""
        raise DataConfigError(
            f"{where}column '{name}': {raw[int(bad[0])].as_py()!r} is not one of {'/'.join(words)}"
        )
    values = np.array([meaning[w] for w in words])
    return _per_text(
        rows, np.where(np.isnan(index), np.nan, values[np.nan_to_num(index).astype(int)])
    )
