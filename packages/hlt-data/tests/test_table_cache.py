"""Tables larger than memory (issue 22): a Parquet file encoded batch by batch into a
cache that training reads a batch at a time, the same examples as reading it whole;
reused, rebuilt when stale, and a clear error where it cannot be written."""

from __future__ import annotations

import logging
import os
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from hlt_data import DataConfigError, TableDataModule, table_cache
from hlt_data.splits import DEFAULT_FRACTIONS, split_indices
from hlt_data.table_cache import NpyRows

ROWS = 3000


def write_parquet(path, rows=ROWS, seed=0):
    """Several row groups; empty cells, rows without a label, a colour seen only once."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], rows).astype(object)
    colour[rng.random(rows) < 0.05] = None
    x = rng.normal(size=rows)
    x[rng.random(rows) < 0.05] = np.nan
    label = rng.choice(["a", "b"], rows).astype(object)
    label[[5, 17, rows // 2]] = None
    kept = np.flatnonzero(label != None)  # noqa: E711 (elementwise)
    test = split_indices(len(kept), DEFAULT_FRACTIONS, 0)["test"]
    colour[kept[test[-1]]] = "purple"  # one test row: unseen in training
    table = pa.table({"x": x, "k": rng.integers(0, 5, rows), "colour": colour, "label": label})
    pq.write_table(table, path, row_group_size=700)
    return path


@pytest.fixture
def small_batches(monkeypatch):
    """Encode 500 rows at a time, so that a build streams several batches."""
    monkeypatch.setattr(table_cache, "BATCH_ROWS", 500)


def cached(path, **options):
    return TableDataModule(path, "label", batch_size=100, cache=True, **options)


def test_a_cached_table_gives_the_examples_of_the_whole_read(tmp_path, small_batches, caplog):
    path = write_parquet(tmp_path / "t.parquet")
    whole = TableDataModule(path, "label", batch_size=100, cache=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        streamed = cached(path)
    assert (tmp_path / "t.parquet.hlt-cache" / "inputs.npy").is_file()
    assert isinstance(streamed.examples["train"].tables[0].inputs, NpyRows)
    assert streamed.data_facts == whole.data_facts  # types, medians, vocabularies, scaler
    for split in ("train", "val", "test"):
        a, b = whole.examples[split].tables[0], streamed.examples[split].tables[0]
        assert np.array_equal(a.inputs, b.inputs[:])
        assert np.array_equal(a.targets, b.targets) and np.array_equal(a.numbers, b.numbers)
        assert streamed.row_ids(split) == whole.row_ids(split)
        for key in ((0, 0), (1, 2)):
            x, y = whole.dataset(split)[key], streamed.dataset(split)[key]
            assert all(torch.equal(x[name], y[name]) for name in x)
    # the unseen colour is logged once for the file, not once per batch
    unseen = [r for r in caplog.records if "unseen in training" in r.getMessage()]
    assert len(unseen) == 1 and "1 row(s)" in unseen[0].getMessage()


def test_the_cache_is_reused_and_rebuilt_when_stale(tmp_path, small_batches, caplog):
    path = write_parquet(tmp_path / "t.parquet")
    index = tmp_path / "t.parquet.hlt-cache" / "index.json"
    first = cached(path)
    built = index.stat().st_mtime_ns
    with caplog.at_level(logging.WARNING):
        again = cached(path)
    assert index.stat().st_mtime_ns == built  # reused
    assert any("dropped 3 row(s)" in r.getMessage() for r in caplog.records)  # repeated
    assert again.data_facts == first.data_facts
    cached(path, split_seed=1)  # other settings: another fit, so another cache
    assert index.stat().st_mtime_ns != built
    write_parquet(path, seed=1)  # a new file of the same name
    os.utime(path, ns=(1, 1))
    fresh = cached(path)
    assert fresh.data_facts == TableDataModule(path, "label", batch_size=100).data_facts


def test_a_cache_that_cannot_be_written_is_one_clear_error(tmp_path):
    path = write_parquet(tmp_path / "t.parquet", rows=400)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataConfigError, match=r"cannot write its cache in .*data\.cache_dir"):
        cached(path, cache_dir=blocker / "caches")
    assert not (tmp_path / "t.parquet.hlt-cache").exists()


def test_cache_true_needs_one_parquet_file(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("x,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(50)))
    with pytest.raises(DataConfigError, match="data.cache=true reads one Parquet file"):
        cached(csv)
    with pytest.raises(DataConfigError, match="data.cache='sometimes'"):
        TableDataModule(csv, "label", cache="sometimes")


def test_rows_on_disk_read_as_a_numpy_array(tmp_path):
    array = np.arange(60, dtype=np.float32).reshape(20, 3)
    np.save(tmp_path / "a.npy", array)
    rows = NpyRows(tmp_path / "a.npy")
    assert len(rows) == 20 and rows.shape == (20, 3) and rows.dtype == np.float32
    for key in (np.array([0, 1, 2, 7, 19]), np.array([3]), np.array([1, 18]), slice(4, 9)):
        assert np.array_equal(rows[key], array[key])
    assert rows[np.array([], dtype=np.int64)].shape == (0, 3)
    copy = pickle.loads(pickle.dumps(rows))  # a worker's copy opens the file itself
    assert copy.file._fd is None and np.array_equal(copy[np.array([5, 6])], array[[5, 6]])


def test_auto_caches_only_a_parquet_file_above_the_threshold(tmp_path, monkeypatch):
    path = write_parquet(tmp_path / "t.parquet", rows=400)  # 400 rows x 4 columns
    TableDataModule(path, "label", batch_size=20)
    assert not (tmp_path / "t.parquet.hlt-cache").exists()
    monkeypatch.setattr(table_cache, "CACHE_CELLS", 1_000)
    TableDataModule(path, "label", batch_size=20)
    assert (tmp_path / "t.parquet.hlt-cache" / "inputs.npy").is_file()
