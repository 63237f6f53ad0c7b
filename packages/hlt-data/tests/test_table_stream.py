"""New table files read a part at a time (``hlt predict`` on files larger than memory):
the parts together are the file read whole, in Parquet files of several row groups and
in CSV files whose column types or longest row show only after their first block."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hlt_data import DataConfigError, TableEncoder, TableReader, prediction_reader
from hlt_data.table_stream import Reread, TableParts


def fitted(train: Path, categorical: tuple[str, ...] = ()) -> TableReader:
    """The reader ``hlt predict`` makes from an export whose encoder was fitted on
    ``train`` (target ``label``)."""
    raw = TableReader("label").read(train)
    features = [c for c in raw.table.column_names if c != "label"]
    encoder = TableEncoder.fit([raw], features, categorical)
    spec = {"format": "table", "target": ["label"], "delimiter": ",", **encoder.state()}
    reader = prediction_reader(spec)[1]
    assert isinstance(reader, TableReader)
    return reader


def streamed(reader: TableReader, path: Path, rows: int = 5, block: int = 64):
    """Every part of ``path`` (read again as often as ``Reread`` asks), and the rereads."""
    parts = TableParts(reader, rows, block)
    for rereads in range(20):
        try:
            return list(parts(path)), rereads
        except Reread:
            continue
    raise AssertionError("read again 20 times")


def assert_same(parts, whole) -> None:
    """The parts' inputs, target values and row numbers are the whole file's."""
    assert len(parts) > 1
    np.testing.assert_array_equal(np.concatenate([p.inputs for p in parts]), whole.inputs)
    np.testing.assert_array_equal(np.concatenate([p.numbers for p in parts]), whole.numbers)
    targets = [str(v) for p in parts for v in p.targets.tolist()]
    assert targets == [str(v) for v in whole.targets.tolist()]
    assert parts[0].columns == whole.columns


def test_parquet_parts_are_the_whole_file_and_unseen_categories_are_counted_once(tmp_path, caplog):
    rng = np.random.default_rng(0)
    train = tmp_path / "train.csv"
    train.write_text(
        "x,colour,label\n"
        + "".join(f"{v:.3f},{c},{lab}\n" for v, c, lab in
                  zip(rng.normal(size=40), ["red", "blue", ""] * 14, "ab" * 20, strict=False))
    )  # fmt: skip
    colour = np.array(["red", "violet", None, "blue", "teal"] * 10, dtype=object)
    x = rng.normal(size=50)
    x[::7] = np.nan
    label = np.array(["a", "b", None, "c", "a"] * 10, dtype=object)  # missing, unseen
    new = tmp_path / "new.parquet"
    pq.write_table(pa.table({"x": x, "colour": colour, "label": label}), new, row_group_size=7)
    reader = fitted(train)
    with caplog.at_level(logging.WARNING):
        whole = reader(new)
    once = [r.getMessage() for r in caplog.records if "unseen" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        parts, rereads = streamed(reader, new)
    assert rereads == 0 and len(parts) == 10
    assert_same(parts, whole)
    assert [r.getMessage() for r in caplog.records if "unseen" in r.getMessage()] == once
    assert "20 row(s) hold 2 categories unseen" in once[0]


def write_csv(path: Path, cells: dict[str, list[str]]) -> Path:
    names = list(cells)
    rows = zip(*(cells[n] for n in names), strict=True)
    path.write_text(",".join(names) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def test_csv_columns_whose_type_shows_after_the_first_block_read_as_the_whole_file(tmp_path):
    """Whole numbers first, then a real (``n``), a word (``flag``: 0/1, then true),
    cells empty at first (``late``), and a category written ``07`` in a column that
    holds a word later: read whole, the column is text, so ``07`` is no ``7``."""
    rows = 60
    train = write_csv(tmp_path / "train.csv", {
        "n": [str(i) for i in range(rows)],
        "flag": ["true", "false"] * (rows // 2),
        "late": [f"{i / 3:.2f}" for i in range(rows)],
        "zip": ["7", "12", "07"] * (rows // 3),
        "label": ["a", "b"] * (rows // 2),
    })  # fmt: skip
    new = write_csv(tmp_path / "new.csv", {
        "n": [str(i) for i in range(rows - 1)] + ["2.5"],
        "flag": ["1", "0"] * (rows // 2 - 1) + ["true", "0"],
        "late": [""] * (rows - 2) + ["1.5", ""],
        "zip": ["07", "7", "12"] * (rows // 3 - 1) + ["x9", "7", "12"],
        "label": ["a"] * rows,
    })  # fmt: skip
    reader = fitted(train, categorical=("zip",))
    whole = reader(new)
    parts, rereads = streamed(reader, new)
    assert rereads == 4  # one per column: each takes the type its late cell needs at once
    assert_same(parts, whole)
    zip_codes = whole.inputs[:3, reader.encoder.names.index("zip")]
    assert len(set(zip_codes.tolist())) == 3  # "07", "7" and "12": three categories


def test_a_row_longer_than_a_block_is_read_with_a_larger_one(tmp_path):
    train = write_csv(tmp_path / "train.csv", {"x": ["1", "2"], "note": ["a", "b"],
                                               "label": ["a", "b"]})  # fmt: skip
    notes = ["short"] * 30 + ["long " * 60] + ["short"] * 9
    new = write_csv(tmp_path / "new.csv", {"x": ["1"] * 40, "note": notes, "label": ["a"] * 40})
    reader = fitted(train)
    parts, rereads = streamed(reader, new)
    assert rereads > 0  # the block doubled until the long row fits
    assert_same(parts, reader(new))


@pytest.mark.parametrize(
    ("late", "message"),
    [
        ("oops,a", "new.csv row 45 column 'x': 'oops' is not a number"),
        ("1,2,a", "new.csv line 46: 3 cells but the header has 2"),
    ],
)
def test_a_bad_row_late_in_a_file_is_named_as_the_whole_read_names_it(tmp_path, late, message):
    train = write_csv(tmp_path / "train.csv", {"x": ["1", "2"], "label": ["a", "b"]})
    new = tmp_path / "new.csv"
    new.write_text("x,label\n" + "1.5,a\n" * 44 + late + "\n" + "2,b\n" * 10)
    reader = fitted(train)
    with pytest.raises(DataConfigError) as whole:
        reader(new)
    with pytest.raises(DataConfigError) as streaming:
        streamed(reader, new)
    assert message in str(whole.value)
    assert str(streaming.value) == str(whole.value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_without_rows_is_one_line(tmp_path, suffix):
    train = write_csv(tmp_path / "train.csv", {"x": ["1", "2"], "label": ["a", "b"]})
    new = tmp_path / f"new{suffix}"
    if suffix == ".csv":
        new.write_text("x,label\n")
    else:
        pq.write_table(pa.table({"x": pa.array([], pa.float64())}), new)
    with pytest.raises(DataConfigError, match=f"new{suffix}: no data rows"):
        streamed(fitted(train), new)


def test_a_part_without_missing_cells_reads_its_missing_indicators_as_0(tmp_path):
    """Training had empty ``x`` cells (so ``x`` has an indicator input); a part of a new
    file (or a whole new file) with none reads the indicator as 0, not as left over."""
    train = write_csv(tmp_path / "train.csv", {"x": ["1.5", "", "2.5"], "label": ["a"] * 3})
    new = write_csv(tmp_path / "new.csv", {"x": [f"{i}.5" for i in range(40)] + [""],
                                           "label": ["a"] * 41})  # fmt: skip
    reader = fitted(train)
    flag = reader.encoder.names.index("x (missing)")
    whole = reader(new)
    assert whole.inputs[:, flag].tolist() == [0.0] * 40 + [1.0]
    parts, _ = streamed(reader, new)
    assert_same(parts, whole)


def test_a_boolean_column_of_0_and_1_cells_reads_as_pyarrow_reads_them(tmp_path):
    train = write_csv(tmp_path / "train.csv", {"flag": ["yes", "no"], "label": ["a", "b"]})
    reader = fitted(train)
    new = write_csv(tmp_path / "new.csv", {"flag": ["1", "0", ""], "label": ["a"] * 3})
    assert reader(new).inputs[:, 0].tolist() == [1.0, 0.0, 0.5]  # empty: the median
    two = write_csv(tmp_path / "two.csv", {"flag": ["1", "2"], "label": ["a"] * 2})
    with pytest.raises(DataConfigError, match="row 2 column 'flag': 2 is not one of 0/1"):
        reader(two)
