"""Ready datamodules for one's own files, configured by a path and a column.

``data=table``, ``data=fasta`` and ``data=npy`` build these: every size, label name and
statistic is read off the files, so nothing is typed by hand. Options other than the
ones named here (``batch_size``, ``split_fractions``, ``normalize``, ``target_type``,
...) are those of ``FileDataModule``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from hlt_data.columns import RawTable, TableEncoder
from hlt_data.errors import DataConfigError
from hlt_data.files import FileDataModule
from hlt_data.getters import PathFiles
from hlt_data.readers import (
    TABLE_SUFFIXES,
    NpyReader,
    Reader,
    SequenceReader,
    Table,
    TableReader,
    read_label_table,
)
from hlt_data.splits import DEFAULT_FRACTIONS, split_indices
from hlt_data.table_cache import cached_table, wants_cache
from hlt_data.tokenizers import CharTokenizer

FASTA_SUFFIXES = (".fasta", ".fa", ".fna", ".faa", ".txt")


class TableDataModule(FileDataModule):
    """CSV or Parquet tables: ``target`` is the target column, every other column a
    feature unless ``features`` lists them.

    Feature columns are typed on the training split (``hlt_data.columns``): numbers,
    booleans, and categories (text, or the numeric columns named in ``categorical``).
    ``missing="impute"`` fills a missing number with the training median and adds a
    missing-indicator input, reads a missing category as its own category, and drops
    rows without a target (counted in the log); ``missing="error"`` refuses empty cells
    and text columns instead.

    ``cache`` (``auto``: a Parquet file of more than 50M cells; ``true``: any one Parquet
    file; ``false``: none) encodes the table once, batch by batch, into a cache that
    training reads a batch at a time (``hlt_data.table_cache``): for tables larger than
    memory. It lives beside the file, or under ``cache_dir`` where that folder cannot be
    written, and is rebuilt when the file or the reading settings change.
    """

    def __init__(
        self,
        path: str | Path,
        target: str | Sequence[str],
        features: Sequence[str] | None = None,
        categorical: Sequence[str] = (),
        missing: str = "impute",
        delimiter: str = ",",
        split_fractions: Mapping[str, float] | None = None,
        split_seed: int = 0,
        cache: str | bool = "auto",
        cache_dir: str | Path | None = None,
        **options: Any,
    ) -> None:
        reader = TableReader(target=target, features=features, delimiter=delimiter)
        files = PathFiles(path, TABLE_SUFFIXES)()
        fractions = split_fractions or DEFAULT_FRACTIONS
        if wants_cache(cache, files):
            reader.pending = {
                files[0]: cached_table(
                    files[0], reader, fractions, split_seed, categorical, missing, cache_dir
                )
            }
        else:
            reader.pending = _read_and_fit(
                reader, files, fractions, split_seed, categorical, missing
            )
        super().__init__(files, reader, split_fractions=fractions, split_seed=split_seed, **options)
        reader.pending.clear()

    @property
    def categories(self) -> list[int]:
        assert isinstance(self.reader, TableReader) and self.reader.encoder is not None
        return self.reader.encoder.categories


def _read_and_fit(
    reader: TableReader,
    files: list[Path],
    fractions: Mapping[str, float],
    split_seed: int,
    categorical: Sequence[str],
    missing: str,
) -> dict[Path, RawTable | Table]:
    """Every file read, and ``reader.encoder`` fitted on the training rows; the raw tables
    are returned for the reader to encode, which then lets each go (nothing else holds it)."""
    raws = [reader.read(file) for file in files]
    train = split_indices(sum(len(r) for r in raws), fractions, split_seed)["train"]
    offsets = np.cumsum([0] + [len(r) for r in raws])
    for i, raw in enumerate(raws):
        raw.rows = train[(train >= offsets[i]) & (train < offsets[i + 1])] - offsets[i]
    names, _ = reader.columns_of(files[0], raws[0].table.column_names)
    for raw in raws[1:]:
        theirs, _ = reader.columns_of(raw.path, raw.table.column_names)
        if set(theirs) != set(names):
            raise DataConfigError(
                f"{raw.path}: columns {theirs}, expected {names} as in {files[0]}"
            )
    reader.encoder = TableEncoder.fit(
        [r for r in raws if len(r.rows)], names, list(categorical), missing
    )
    # what fitting allocated (each column's training values), back to the system before
    # the inputs are encoded: Arrow's pool would otherwise keep it, raising the peak
    pa.default_memory_pool().release_unused()
    return {raw.path: raw for raw in raws}


class FastaDataModule(FileDataModule):
    """FASTA (or one-sequence-a-line text) files, tokenized by ``alphabet`` (DNA by
    default; any characters in general).

    Labels come from a header word ``label_key=value`` or, with ``labels`` (a CSV with
    columns ``id`` and ``label``), from the record id. ``target_type=auto`` reads labels
    when ``labels`` is given or the first record's header has ``label_key=``, and
    otherwise reads no targets (language modelling). ``seq_len`` (default: the longest
    record, at most ``max_seq_len``) pads every sequence; a longer record is an error
    naming it, unless ``long_records`` is ``crop`` or ``window`` (``SequenceReader``).
    """

    def __init__(
        self,
        path: str | Path,
        seq_len: int | None = None,
        alphabet: str = "ACGTN",
        label_key: str = "label",
        labels: str | Path | None = None,
        target_type: str = "auto",
        long_records: str = "error",
        max_seq_len: int = 16384,
        **options: Any,
    ) -> None:
        files = PathFiles(path, FASTA_SUFFIXES)()
        records = [r for file in files for r in SequenceReader.records(file)]
        if not records:
            raise DataConfigError(f"data.path={path}: no sequences in {len(files)} file(s)")
        table = None if labels is None else read_label_table(labels)
        if target_type == "auto":
            header = records[0][0]
            labelled = table is not None or f"{label_key}=" in header
            target_type = "class" if labelled else "none"
        longest = max(range(len(records)), key=lambda i: len(records[i][1]))
        if seq_len is None and len(records[longest][1]) > max_seq_len and long_records == "error":
            header, sequence = records[longest]
            raise DataConfigError(
                f"data.path={path} record '{header.split()[0] if header else longest}': "
                f"{len(sequence):,} characters, longer than data.max_seq_len={max_seq_len} "
                "(data.seq_len=null pads to the longest record); set data.seq_len and "
                "data.long_records=crop or window, or use data=genome for genome-scale "
                "sequences"
            )
        reader = SequenceReader(
            CharTokenizer(alphabet),
            seq_len=seq_len or min(len(records[longest][1]), max_seq_len),
            label_key=None if target_type == "none" or table is not None else label_key,
            label_table=None if target_type == "none" else table,
            long_records=long_records,
        )
        super().__init__(files, reader, target_type=target_type, **options)


class NpyDataModule(FileDataModule):
    """Memory-mapped ``.npy`` pairs: each ``*inputs.npy`` under ``path`` (or ``path``
    itself) with its targets file, whose name has ``targets`` in place of ``inputs``."""

    def __init__(
        self, path: str | Path, inputs: str = "inputs", targets: str = "targets", **options: Any
    ) -> None:
        files = PathFiles(path, (f"{inputs}.npy",))
        super().__init__(files, NpyReader(inputs=inputs, targets=targets), **options)


def prediction_reader(spec: Mapping[str, Any]) -> tuple[tuple[str, ...], Reader]:
    """The file suffixes (for a folder) and the reader of new data to predict on, from the
    ``reader`` entry a run saved (``FileDataModule.data_facts``): the same columns,
    alphabet and length as in training, targets not read."""
    kind = spec.get("format")
    if kind == "table":
        encoder = (
            TableEncoder.from_state(spec)
            if "columns" in spec
            else TableEncoder.numeric(spec["features"])  # saved before typed columns
        )
        reader: Reader = TableReader(
            spec.get("target") or None,
            encoder.features,
            spec.get("delimiter", ","),
            encoder,
            target_required=False,
        )
        return TABLE_SUFFIXES, reader
    if kind == "fasta":
        tokenizer = CharTokenizer(spec["alphabet"], spec.get("case_sensitive", False))
        # exports written before long_records existed cut long records
        policy = spec.get("long_records", "crop")
        return FASTA_SUFFIXES, SequenceReader(tokenizer, spec["seq_len"], long_records=policy)
    if kind == "npy":
        return (f"{spec['inputs']}.npy",), NpyReader(spec["inputs"], None)
    raise DataConfigError(f"no reader for new data of format {kind!r} (known: table, fasta, npy)")
