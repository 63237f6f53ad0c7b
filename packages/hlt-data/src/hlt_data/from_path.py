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

from hlt_data.errors import DataConfigError
from hlt_data.files import FileDataModule
from hlt_data.getters import PathFiles
from hlt_data.readers import (
    TABLE_SUFFIXES,
    NpyReader,
    Reader,
    SequenceReader,
    TableReader,
    read_label_table,
)
from hlt_data.tokenizers import CharTokenizer

FASTA_SUFFIXES = (".fasta", ".fa", ".fna", ".faa", ".txt")


class TableDataModule(FileDataModule):
    """CSV or Parquet tables: ``target`` is the target column, every other column a
    feature unless ``features`` lists them."""

    def __init__(
        self,
        path: str | Path,
        target: str | Sequence[str],
        features: Sequence[str] | None = None,
        delimiter: str = ",",
        **options: Any,
    ) -> None:
        reader = TableReader(target=target, features=features, delimiter=delimiter)
        super().__init__(PathFiles(path, TABLE_SUFFIXES), reader, **options)


class FastaDataModule(FileDataModule):
    """FASTA (or one-sequence-a-line text) files, tokenized by ``alphabet`` (DNA by
    default; any characters in general).

    Labels come from a header word ``label_key=value`` or, with ``labels`` (a CSV with
    columns ``id`` and ``label``), from the record id. ``target_type=auto`` reads labels
    when ``labels`` is given or the first record's header has ``label_key=``, and
    otherwise reads no targets (language modelling). ``seq_len`` (default: the longest
    record) pads and cuts every sequence.
    """

    def __init__(
        self,
        path: str | Path,
        seq_len: int | None = None,
        alphabet: str = "ACGTN",
        label_key: str = "label",
        labels: str | Path | None = None,
        target_type: str = "auto",
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
        reader = SequenceReader(
            CharTokenizer(alphabet),
            seq_len=seq_len or max(len(sequence) for _, sequence in records),
            label_key=None if target_type == "none" or table is not None else label_key,
            label_table=None if target_type == "none" else table,
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
        reader: Reader = TableReader(None, spec["features"], spec.get("delimiter", ","))
        return TABLE_SUFFIXES, reader
    if kind == "fasta":
        tokenizer = CharTokenizer(spec["alphabet"], spec.get("case_sensitive", False))
        return FASTA_SUFFIXES, SequenceReader(tokenizer, spec["seq_len"])
    if kind == "npy":
        return (f"{spec['inputs']}.npy",), NpyReader(spec["inputs"], None)
    raise DataConfigError(f"no reader for new data of format {kind!r} (known: table, fasta, npy)")
