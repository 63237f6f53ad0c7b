"""Typed table columns (issue 22): types and vocabularies read off the training split,
missing values, unseen categories, errors that name every bad column, and the surprises
of real files (a byte-order mark, a huge field, duplicate names, lookalike labels)."""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hlt_data import (
    DataConfigError,
    TableDataModule,
    TableEncoder,
    TableReader,
    columns,
    prediction_reader,
    readers,
)
from hlt_data.batch import INPUTS
from hlt_data.columns import RawTable
from hlt_data.splits import DEFAULT_FRACTIONS, split_indices
from hlt_data.targets import LabelVocabulary, TextLabels

ROWS = 60


def write(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def mixed_rows(n=ROWS):
    """num, pandas' True/False dummy, yes/no, text, a numeric code, a label."""
    return [
        [
            f"{i * 0.5}",
            ["True", "False"][i % 2],
            ["yes", "no"][i % 3 == 0],
            ["red", "green", "blue"][i % 3],
            f"{10 + i % 4}",
            ["a", "b"][i % 2],
        ]
        for i in range(n)
    ]


HEADER = ["num", "dummy", "answer", "colour", "code", "y"]


def test_each_column_type_from_the_training_split(tmp_path):
    csv = write(tmp_path / "t.csv", HEADER, mixed_rows())
    dm = TableDataModule(csv, "y", categorical=["code"], batch_size=8, normalize=False)
    kinds = {c["name"]: c["kind"] for c in dm.data_facts["reader"]["columns"]}
    assert kinds == {
        "num": "numeric", "dummy": "boolean", "answer": "boolean",
        "colour": "categorical", "code": "categorical",
    }  # fmt: skip
    # inputs: num, dummy, answer, then codes of colour and code (unseen, missing, sorted)
    assert dm.dims["input_dim"] == 5 and dm.dims["categories"] == [5, 6]
    train = split_indices(ROWS, DEFAULT_FRACTIONS, 0)["train"]
    got = dm.examples["train"].values(INPUTS, np.sort(train))
    rows = [mixed_rows()[i] for i in np.sort(train)]
    assert got[:, 0].tolist() == [float(r[0]) for r in rows]
    assert got[:, 1].tolist() == [float(r[1] == "True") for r in rows]
    assert got[:, 2].tolist() == [float(r[2] == "yes") for r in rows]
    assert got[:, 3].tolist() == [2 + ["blue", "green", "red"].index(r[3]) for r in rows]
    assert got[:, 4].tolist() == [2 + ["10", "11", "12", "13"].index(r[4]) for r in rows]


def test_categories_unseen_in_training_read_as_unseen_and_are_counted(tmp_path, caplog):
    rows = mixed_rows()
    test = split_indices(ROWS, DEFAULT_FRACTIONS, 0)["test"]
    for i in test[:3]:
        rows[i][3] = "violet"
    csv = write(tmp_path / "t.csv", HEADER, rows)
    with caplog.at_level(logging.WARNING):
        dm = TableDataModule(csv, "y", batch_size=8)
    assert "column 'colour': 3 row(s) hold 1 category unseen in training ('violet')" in (
        caplog.text
    )
    codes = dm.examples["test"].values(INPUTS, np.sort(test))[:, -1]  # colour
    assert (codes == 0).sum() == 3  # unseen is code 0, never an error


def test_missing_numbers_get_the_training_median_and_an_indicator(tmp_path):
    rows = mixed_rows()
    for i in range(0, ROWS, 5):
        rows[i][0] = ["", "NA"][i % 2]
    rows[7][3] = ""  # a missing category is its own category
    csv = write(tmp_path / "t.csv", HEADER, rows)
    dm = TableDataModule(csv, "y", batch_size=8, normalize=False)
    train = np.sort(split_indices(ROWS, DEFAULT_FRACTIONS, 0)["train"])
    present = [float(rows[i][0]) for i in train if rows[i][0] not in ("", "NA")]
    (num,) = [c for c in dm.data_facts["reader"]["columns"] if c["name"] == "num"]
    assert num["fill"] == np.median(present) and num["indicator"] is True
    everything = [float(r[0]) for r in rows if r[0] not in ("", "NA")]
    assert np.median(present) != np.median(everything)  # training rows only
    values = dm.examples["train"].values(INPUTS, np.arange(ROWS))
    missing = np.array([r[0] in ("", "NA") for r in rows])
    assert (values[missing, 0] == np.median(present)).all()
    # inputs: num, dummy, answer, code, the indicator of num, colour's code
    assert values[:, 4].tolist() == missing.astype(float).tolist()
    assert values[7, 5] == 1  # colour: code 1, "missing"


def test_rows_without_a_target_are_dropped_and_counted(tmp_path, caplog):
    rows = mixed_rows()
    for i in (4, 9, 30):
        rows[i][5] = ""
    csv = write(tmp_path / "t.csv", HEADER, rows)
    with caplog.at_level(logging.WARNING):
        dm = TableDataModule(csv, "y", batch_size=8)
    assert "dropped 3 row(s) with no target (rows 5, 10, 31)" in caplog.text
    assert len(dm.examples["train"]) == ROWS - 3
    ids = {int(r) for split in ("train", "val", "test") for _, r in dm.row_ids(split)}
    assert ids == set(range(1, ROWS + 1)) - {5, 10, 31}  # rows keep their file numbers


def test_missing_error_is_strict_and_names_every_bad_column_at_once(tmp_path):
    rows = mixed_rows()
    rows[3][0] = ""
    csv = write(tmp_path / "t.csv", HEADER, rows)
    with pytest.raises(DataConfigError) as error:
        TableDataModule(csv, "y", missing="error", batch_size=8)
    message = str(error.value)
    assert "column(s) 'colour', 'code' hold text" not in message  # code is numeric
    assert "column(s) 'colour' hold text: data.missing=error reads numbers only" in message
    rows = mixed_rows()
    rows[3][0], rows[5][4] = "", "x"
    csv = write(tmp_path / "t.csv", HEADER, rows)
    with pytest.raises(DataConfigError) as error:
        TableDataModule(csv, "y", missing="error", categorical=["colour"], batch_size=8)
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert "row 4 column 'num': a missing value" in message
    assert "row 6 column 'code': 'x' is not a number" in message


def test_typos_in_several_numeric_columns_are_named_together(tmp_path):
    rows = mixed_rows()
    rows[2][0], rows[40][4] = "1,5".replace(",", ";"), "n/a?"
    csv = write(tmp_path / "t.csv", HEADER, rows)
    with pytest.raises(DataConfigError, match=r"row 3 column 'num': '1;5' is not a number .*; "
                       r"row 41 column 'code': 'n/a\?' is not a number"):  # fmt: skip
        TableDataModule(csv, "y", batch_size=8)


def test_real_valued_targets_under_classification_suggest_regression(tmp_path):
    rows = [[f"{i}", f"{i * 1.37:.2f}"] for i in range(ROWS)]
    csv = write(tmp_path / "t.csv", ["x", "price"], rows)
    with pytest.raises(DataConfigError, match=r"distinct values .* use task=regression"):
        TableDataModule(csv, "price", target_type="class", batch_size=8)
    assert TableDataModule(csv, "price", target_type="real", batch_size=8).dims["output_dim"] == 1


def test_csv_and_parquet_name_the_same_row_alike(tmp_path):
    rows = mixed_rows()
    rows[12][0] = "inf"
    csv = write(tmp_path / "t.csv", HEADER, rows)
    table = pa.table({h: [r[j] for r in rows] for j, h in enumerate(HEADER)})
    table = table.set_column(0, "num", pa.array([float(r[0]) for r in rows]))
    pq.write_table(table, tmp_path / "t.parquet")
    messages = []
    for path in (csv, tmp_path / "t.parquet"):
        with pytest.raises(DataConfigError) as error:
            TableDataModule(path, "y", batch_size=8)
        messages.append(str(error.value).split(" ", 1)[1])
    assert messages[0] == messages[1]
    assert messages[0].startswith("row 13 column 'num': inf (infinite")


def test_a_byte_order_mark_a_huge_field_and_duplicate_names(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfa,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)).encode())
    assert TableDataModule(bom, "y", batch_size=8).dims["input_dim"] == 1  # 'a', not '\ufeffa'
    huge = tmp_path / "huge.csv"
    field = "x" * (10 << 20)
    huge.write_text("a,note,y\n" + "".join(f"{i},{field if i == 3 else 'n'},{i % 2}\n"
                                            for i in range(40)))  # fmt: skip
    assert TableReader("y").read(huge).table.column("note")[3].as_py() == field  # read whole
    assert TableDataModule(huge, "y", batch_size=8).dims["input_dim"] == 2
    dup = write(tmp_path / "dup.csv", ["a", "b", "a", "b", "y"], [["1", "2", "3", "4", "0"]] * 9)
    with pytest.raises(DataConfigError, match=r"dup\.csv: duplicate column name\(s\) 'a', 'b'"):
        TableDataModule(dup, "y", batch_size=2)


def test_labels_are_kept_exactly_and_lookalikes_are_named(tmp_path, caplog):
    labels = ["cat", " cat", "cat ", "Cat", "dog"]
    rows = [[f"{i}", labels[i % 5]] for i in range(100)]
    csv = write(tmp_path / "t.csv", ["x", "y"], rows)
    with caplog.at_level(logging.WARNING):
        dm = TableDataModule(csv, "y", batch_size=8)
    assert dm.dims["labels"] == sorted(labels)
    assert "labels ' cat', 'Cat', 'cat', 'cat ' differ only in case or surrounding" in (caplog.text)
    assert "dog" not in caplog.text


def test_new_files_are_read_with_the_saved_types_alone(tmp_path):
    csv = write(tmp_path / "t.csv", HEADER, mixed_rows())
    dm = TableDataModule(csv, "y", categorical=["code"], batch_size=8)
    _, reader = prediction_reader(dm.data_facts["reader"])
    new = write(tmp_path / "new.csv", HEADER[:-1], [r[:-1] for r in mixed_rows(10)])
    table = reader(new)
    assert table.targets is None and table.numbers is not None
    expected = dm.examples["train"].values(INPUTS, np.arange(10))
    assert np.array_equal(table.inputs, expected)
    encoder = TableEncoder.from_state(dm.data_facts["reader"])
    assert encoder.state() == {k: dm.data_facts["reader"][k] for k in ("missing", "columns")}


def test_real_columns_read_alike_whether_copied_whole_or_read_cell_by_cell(tmp_path):
    """Reals with nothing missing are copied chunk by chunk; NaN without a null, and a
    value beyond float32, fall back to the full reading (median and indicator; an error
    naming the row, where the float32 inputs would hold inf)."""
    rng = np.random.default_rng(0)
    plain = rng.normal(size=ROWS)
    nan = plain.copy()
    nan[[3, 40]] = np.nan
    huge = plain.copy()
    huge[7] = 1e300
    chunks = [slice(0, 25), slice(25, ROWS)]  # a column of two chunks
    table = pa.table(
        {
            name: pa.chunked_array([values[c] for c in chunks])
            for name, values in {"plain": plain, "nan": nan, "huge": huge}.items()
        }
    )
    assert table.column("nan").null_count == 0 and table.column("plain").num_chunks == 2
    numbers = np.arange(1, ROWS + 1)
    encoder = TableEncoder.fit(
        [TableReader(None).read(_parquet(tmp_path, table))], ["plain", "nan", "huge"]
    )
    with pytest.raises(DataConfigError, match=r"row 8 column 'huge': 1e\+300 \(beyond float32"):
        encoder.encode(tmp_path / "t.parquet", table, numbers)
    within = pa.chunked_array([plain[c] for c in chunks])
    inputs = encoder.encode(tmp_path / "t.parquet", table.set_column(2, "huge", within), numbers)
    assert encoder.names == ["plain", "nan", "huge", "nan (missing)"]
    np.testing.assert_array_equal(inputs[:, 0], plain.astype(np.float32))
    fill = np.float32(encoder.columns[1].fill)
    assert fill == np.float32(np.median(nan[np.isfinite(nan)]))
    np.testing.assert_array_equal(
        inputs[:, 1], np.where(np.isnan(nan), fill, nan).astype(np.float32)
    )
    np.testing.assert_array_equal(inputs[:, 3], np.isnan(nan).astype(np.float32))


def _parquet(tmp_path, table):
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    return path


def test_inputs_are_written_a_block_of_rows_at_a_time_across_chunks(tmp_path, monkeypatch):
    """Blocks of rows that straddle chunk boundaries, split among threads: every input
    column lands in its place (plain reals read in place, filled reals, indicator, codes)."""
    monkeypatch.setattr(columns, "BLOCK_ROWS", 8)
    monkeypatch.setattr(columns, "THREADS", 3)
    rng = np.random.default_rng(1)
    plain = rng.normal(size=ROWS)
    gaps = np.where(np.arange(ROWS) % 7 == 2, np.nan, rng.normal(size=ROWS))
    kinds = np.array(["p", "q", "r"])[np.arange(ROWS) % 3]
    bounds = [0, 13, 43, ROWS]  # chunks of 13, 30 and 17 rows
    table = pa.table(
        {
            "plain": pa.chunked_array([plain[a:b] for a, b in itertools.pairwise(bounds)]),
            "gaps": pa.chunked_array(
                [pa.array(gaps[a:b], from_pandas=True) for a, b in itertools.pairwise(bounds)]
            ),
            "kind": pa.chunked_array([kinds[a:b] for a, b in itertools.pairwise(bounds)]),
        }
    )
    encoder = TableEncoder.fit(
        [TableReader(None).read(_parquet(tmp_path, table))], ["plain", "gaps", "kind"]
    )
    inputs = encoder.encode(tmp_path / "t.parquet", table, np.arange(1, ROWS + 1))
    assert encoder.names == ["plain", "gaps", "gaps (missing)", "kind"]
    fill = encoder.columns[1].fill
    expected = np.stack(
        [plain, np.where(np.isnan(gaps), fill, gaps), np.isnan(gaps), np.arange(ROWS) % 3 + 2],
        axis=1,
    ).astype(np.float32)
    np.testing.assert_array_equal(inputs, expected)


def test_csv_types_come_from_the_first_block_unless_a_later_block_needs_wider(
    tmp_path, monkeypatch
):
    """Types fixed from the first block spare pyarrow keeping every parsed block; where a
    later block holds a real among whole numbers, a value in an empty column, or text
    among numbers, the file is read again, so the table is always what whole-file
    inference gives."""
    monkeypatch.setattr(readers, "BLOCK", 256)
    reads = []
    real_read = readers.pacsv.read_csv

    def counted(*args, **kwargs):
        reads.append(kwargs["convert_options"].column_types)
        return real_read(*args, **kwargs)

    monkeypatch.setattr(readers.pacsv, "read_csv", counted)
    head = [[f"{i}", "", f"{i % 2 == 0}", f"{i}"] for i in range(60)]
    uniform = write(tmp_path / "uniform.csv", ["n", "empty", "flag", "code"], head)
    wider = write(
        tmp_path / "wider.csv", ["n", "empty", "flag", "code"], [*head, ["2.5", "x", "yes", "A7"]]
    )
    for path, reads_wanted in ((uniform, 1), (wider, 2)):
        reads.clear()
        table = readers.read_csv(path, columns=["n", "empty", "flag", "code"])
        assert len(reads) == reads_wanted and reads[0]  # the first read has types
        whole = real_read(
            path, convert_options=readers.pacsv.ConvertOptions(strings_can_be_null=True)
        )
        assert table.schema == whole.schema and table.equals(whole)
    assert [f.type for f in table.schema] == [pa.float64(), pa.string(), pa.string(), pa.string()]


@pytest.mark.parametrize(
    ("words", "vocabulary"),
    [
        (["dog", "cat", "emu"], ["dog", "emu"]),
        (["10", "2", "9"], ["9", "10"]),  # numbers: in numeric order
        (["2", "x", "1"], ["1", "2"]),  # the training rows' words are numbers
        (["1", "2.5", "3"], ["1", "3"]),
    ],
)
def test_text_labels_coded_once_read_as_their_strings(words, vocabulary):
    """A text target as codes into its distinct words gives the vocabulary, the class
    indices and the error (row, label, hint) that its strings give, also where the
    training rows lack a word, and in numeric order where every word is a number."""
    codes = np.arange(30) % 3
    labels = TextLabels(codes, np.array(words))
    strings = np.array(words)[codes]
    train = np.flatnonzero(codes != 1)  # the training rows lack words[1]
    outcomes = []
    for values in (labels, strings):
        fitted = LabelVocabulary.fit(values[train])
        with pytest.raises(DataConfigError) as error:
            fitted.encode(values, lambda row: f"row {row + 1}", "t.csv")
        assert np.asarray(values[5:7]).tolist() == [words[2], words[0]] and values[4] == words[1]
        outcomes.append((fitted.names, fitted.encode(values[train], str, "t"), error.value))
    (names, encoded, error), (names_s, encoded_s, error_s) = outcomes
    assert names == names_s and np.array_equal(encoded, encoded_s) and str(error) == str(error_s)
    assert str(error).startswith(f"t.csv row 2: label '{words[1]}' never occurs")
    assert names == vocabulary
    assert ("task=regression" in str(error)) == (words[1] == "2.5")


def test_training_medians_are_gathered_across_chunks_and_files(tmp_path):
    """A real column's training rows are taken from every chunk of every file (here one
    of three chunks, one of float32 and one with NaN): the median is numpy's of exactly
    those rows, and NaN (a missing cell without a null) gives the indicator."""
    rng = np.random.default_rng(2)
    first = rng.normal(size=50)
    second = rng.normal(size=21).astype(np.float32)
    second[4] = np.nan
    parts = [
        RawTable(
            tmp_path / "a.csv",
            pa.table({"x": pa.chunked_array([first[:9], first[9:30], first[30:]])}),
            np.arange(1, 51),
            np.array([0, 8, 9, 29, 30, 44, 49]),
        ),
        RawTable(
            tmp_path / "b.csv", pa.table({"x": second}), np.arange(1, 22), np.arange(0, 21, 2)
        ),
    ]
    column = TableEncoder.fit(parts, ["x"]).columns[0]
    train = np.concatenate([first[parts[0].rows], second[parts[1].rows].astype(np.float64)])
    assert column.indicator and column.fill == np.median(train[np.isfinite(train)])


def test_text_columns_start_first_and_results_keep_column_order():
    """Columns are fitted and encoded side by side; the heavy ones (text) are started
    first so that no thread ends alone with one, and results (and errors) keep the
    columns' order."""
    started = []

    def work(name):
        started.append(name)
        return name.upper()

    names = ["a", "b", "text", "c", "words"]
    done = columns._each_column(work, names, threads=1, first=lambda n: len(n) > 1)
    assert started == ["text", "words", "a", "b", "c"]
    assert done == ["A", "B", "TEXT", "C", "WORDS"]


def _chunks(values, bounds=(0, 13, 43, ROWS), coded=False):
    """``values`` as a column of three chunks; ``coded``: each chunk dictionary-coded on
    its own (as a CSV read codes text: a dictionary per block)."""
    parts = [pa.array(values[a:b]) for a, b in itertools.pairwise(bounds)]
    return pa.chunked_array([p.dictionary_encode() if coded else p for p in parts])


def test_text_read_coded_by_a_dictionary_reads_as_its_strings(tmp_path, caplog):
    """Text columns coded by per-chunk dictionaries (how CSV files are read) and the
    same text as strings (Parquet) give one encoder: categories with unseen and missing
    cells, boolean words, numbers written as text (spaces, a missing cell), and labels."""
    i = np.arange(ROWS)
    colour = np.array(["red", "green", "blue"], dtype=object)[i % 3]
    colour[i % 11 == 4] = None
    colour[5] = "violet"  # in a row outside training
    answer = np.array(["Yes", "no"], dtype=object)[i % 2]
    written = np.array([f" {v / 4}" for v in i], dtype=object)
    written[7] = None
    label = np.array(["b", "a", "c"])[i % 3]
    train = np.flatnonzero(i % 5 != 0)
    encoded = []
    for coded in (False, True):
        table = pa.table(
            {
                name: _chunks(values, coded=coded)
                for name, values in [
                    ("colour", colour), ("answer", answer), ("written", written), ("y", label)
                ]
            }
        )  # fmt: skip
        raw = RawTable(tmp_path / "t.csv", table, i + 1, train)
        encoder = TableEncoder.fit([raw], ["colour", "answer", "written"])
        unseen: dict[str, dict[str, int]] = {}
        inputs = encoder.encode(raw.path, table, raw.numbers, unseen)
        targets = TableReader("y").target_values(table)
        encoded.append((encoder.state(), inputs, unseen, np.asarray(targets)))
    (state, inputs, unseen, targets), again = encoded
    assert state == again[0] and unseen == again[2] == {"colour": {"violet": 1}}
    np.testing.assert_array_equal(inputs, again[1])
    assert targets.tolist() == again[3].tolist() == label.tolist()
    kinds = {c["name"]: (c["kind"], c["categories"]) for c in state["columns"]}
    assert kinds["colour"] == ("categorical", ["blue", "green", "red"])
    assert kinds["answer"][0] == "boolean" and kinds["written"][0] == "numeric"
    fill = state["columns"][2]["fill"]
    assert fill == np.median((i[train][i[train] != 7]) / 4)
    expected = np.where(i == 7, fill, i / 4)
    np.testing.assert_array_equal(inputs[:, 1], expected.astype(np.float32))
    codes = np.where(i % 11 == 4, 1, np.array([4, 3, 2])[i % 3])  # missing 1; blue 2 ...
    codes[5] = 0
    np.testing.assert_array_equal(inputs[:, 2], codes.astype(np.float32))
    np.testing.assert_array_equal(inputs[:, 0], (i % 2 == 0).astype(np.float32))


def test_a_typo_among_numbers_written_as_text_is_named_by_row(tmp_path):
    """A text column of numbers with a typo: fitted as numbers, and reading it names the
    typo's row and text (trimmed), not a missing cell before it."""
    written = np.array([f"{v}" for v in range(ROWS)], dtype=object)
    written[3], written[20] = None, " 4,5 "
    table = pa.table({"x": _chunks(written, coded=True)})
    raw = RawTable(tmp_path / "t.csv", table, np.arange(1, ROWS + 1), np.arange(ROWS))
    encoder = TableEncoder.fit([raw], ["x"])
    assert encoder.columns[0].kind == "numeric"
    with pytest.raises(DataConfigError, match=r"row 21 column 'x': '4,5' is not a number"):
        encoder.encode(raw.path, table, raw.numbers)
    # the typo's row has no target: dropped, its text stays in the column's dictionary
    rows = [[f"{v}.5", "a"] for v in range(ROWS)]
    rows[0] = [" 4..5", ""]
    reader = TableReader("y")
    read = reader.read(write(tmp_path / "t.csv", ["x", "y"], rows))
    read.rows = np.arange(len(read))
    encoder = TableEncoder.fit([read], ["x"])
    assert pa.types.is_dictionary(read.table.column("x").type) and len(read) == ROWS - 1
    inputs = encoder.encode(read.path, read.table, read.numbers)
    np.testing.assert_array_equal(inputs[:3, 0], [1.5, 2.5, 3.5])


def test_a_whole_file_is_let_go_chunk_by_chunk_as_it_is_encoded(tmp_path, monkeypatch):
    """Encoding a whole file hands its Arrow columns over: each chunk goes back to the
    pool once its rows are copied (the pool holds less and less during the copy, nothing
    at the end), and the inputs are those of encoding the same table kept whole."""
    monkeypatch.setattr(readers, "TYPED_BLOCK", 256)  # a chunk of a few rows per block
    monkeypatch.setattr(columns, "BLOCK_ROWS", 4)
    monkeypatch.setattr(columns, "THREADS", 1)
    csv = write(tmp_path / "t.csv", HEADER, mixed_rows())
    reader = TableReader("y")
    raw = reader.read(csv)
    assert raw.table.column("num").num_chunks > 3
    raw.rows = np.arange(len(raw))
    encoder = TableEncoder.fit([raw], HEADER[:-1])
    kept = reader.read(csv)
    pool = readers.csv_memory_pool()
    held = []
    copy_into = columns._Chunks.copy_into

    def counted(self, *args):
        copy_into(self, *args)
        held.append(pool.bytes_allocated())

    monkeypatch.setattr(columns._Chunks, "copy_into", counted)
    before = pool.bytes_allocated()
    inputs = encoder.encode_whole(raw)
    assert raw.table.num_columns == 0 and pool.bytes_allocated() < before
    assert held[len(held) // 2] < held[0] and held[-1] < held[len(held) // 2]
    np.testing.assert_array_equal(inputs, encoder.encode(csv, kept.table, kept.numbers))


@pytest.mark.parametrize(("n", "seed"), [(10, 0), (997, 3), (20_000, 7)])
def test_splits_are_the_sorted_parts_of_one_permutation(n, seed):
    """Each split is its part of one seeded permutation, sorted (found without sorting)."""
    order = np.random.default_rng(seed).permutation(n)
    val, test = round(0.15 * n), round(0.15 * n)
    parts = split_indices(n, DEFAULT_FRACTIONS, seed)
    ends = np.cumsum([0, n - val - test, val, test])
    for (split, rows), a, b in zip(parts.items(), ends[:-1], ends[1:], strict=True):
        assert split in DEFAULT_FRACTIONS
        np.testing.assert_array_equal(rows, np.sort(order[a:b]))


def test_arrow_and_numpy_cross_as_buffers_as_pyarrow_converts_them():
    """The buffer-level crossings (no pandas) give what pyarrow's own conversions give:
    sliced chunks (an offset into their buffers), nulls as NaN or False, numpy arrays
    and strings into Arrow, text as codes into its distinct texts."""
    reals = pa.chunked_array([pa.array([1.5, None, 3.0, 4.0]).slice(1), pa.array([7.0])])
    ints = pa.chunked_array([pa.array([5, 6, 7, 8], pa.int32()).slice(2, 2)])
    bools = pa.chunked_array([pa.array([True, None, False, True]).slice(1, 3)])
    np.testing.assert_array_equal(columns.floats(reals), [np.nan, 3.0, 4.0, 7.0])
    np.testing.assert_array_equal(columns.floats(ints), [7.0, 8.0])
    assert columns.joined(ints).dtype == np.int32 and columns.joined(ints).tolist() == [7, 8]
    assert columns.flags(bools).tolist() == [False, False, True]
    assert columns.joined(pa.chunked_array([], pa.float64())).shape == (0,)
    for array in (np.array([3, -1, 2]), np.array([0.5, np.inf]), np.array([True, False] * 5)):
        assert columns.arrow_of(array).equals(pa.array(array))
    words = ["é", "", "long words"]
    assert columns.arrow_strings(words).equals(pa.array(words, pa.string()))
    text = pa.chunked_array([["b", None, "a"], ["a", "c"]])
    codes, distinct = columns.text_codes(text)
    assert [distinct[c].as_py() if c >= 0 else None for c in codes] == text.to_pylist()


@pytest.mark.cli
def test_reading_a_table_imports_no_pandas(tmp_path):
    """pyarrow imports pandas for its own conversions where pandas is installed (tens
    of MB in every process); reading, fitting and encoding a table crosses as buffers."""
    csv = write(tmp_path / "t.csv", HEADER, mixed_rows())
    pq.write_table(readers.read_csv(csv), tmp_path / "t.parquet")
    script = (
        "import sys\nfrom hlt_data import TableDataModule\n"
        "for path in sys.argv[1:]:\n"
        "    TableDataModule(path, 'y', categorical=['code'], batch_size=8)\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(csv), str(tmp_path / "t.parquet")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split()[-1] == "False"
