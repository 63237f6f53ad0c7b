"""Worker chunks: with workers, K batches cross the process boundary as one item, and the
stream (batches, order, content, dtypes, resume positions) is that of num_workers=0."""

import numpy as np
import pytest
import torch

from hlt_data import (
    DataConfigError,
    FileDataModule,
    GaussianClusters,
    GlobFiles,
    NpyReader,
    SimulatedDataModule,
)
from hlt_data.batch import INPUTS, TARGETS
from hlt_data.chunks import Chunk, ChunkedKeys
from hlt_data.keys import BatchKeys
from hlt_data.loader import chunk_size


def _files(root, pattern="inputs.npy", **kwargs):
    options = {
        "batch_size": 5,  # 24 training rows: batches of 5, 5, 5, 5, 4
        "seed": 7,
        "split_fractions": {"train": 0.6, "val": 0.2, "test": 0.2},
    }
    options.update(kwargs)
    return FileDataModule(GlobFiles(root, pattern), NpyReader(), **options)


def _simulated(**kwargs):
    sampler = GaussianClusters(input_dim=3, num_classes=2)
    return SimulatedDataModule(sampler, batch_size=4, train_batches=7, seed=7, **kwargs)


def _epochs(loader, epochs=2):
    stream = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        stream.extend(loader)
    return stream


def _assert_same_stream(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert list(a) == list(b)  # same keys, same order
        for name in a:
            assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape
            assert torch.equal(a[name], b[name])


@pytest.fixture
def two_files(tmp_path):
    """Two .npy pairs of 20 rows (so batches may straddle files)."""
    rng = np.random.default_rng(1)
    for part in range(2):
        np.save(tmp_path / f"{part}.inputs.npy", rng.normal(size=(20, 3)).astype(np.float32))
        np.save(tmp_path / f"{part}.targets.npy", rng.integers(0, 4, 20))
    return tmp_path


@pytest.mark.parametrize("worker_chunk", [1, 2, 32])
@pytest.mark.parametrize("data", ["one_file", "two_files", "simulated"])
def test_chunked_workers_give_the_stream_of_no_workers(npy_pair, two_files, data, worker_chunk):
    def make(**kwargs):
        if data == "simulated":
            return _simulated(**kwargs)
        return _files(
            *((npy_pair[0],) if data == "one_file" else (two_files, "*.inputs.npy")), **kwargs
        )

    want = _epochs(make().train_dataloader())
    loader = make(num_workers=2, worker_chunk=worker_chunk).train_dataloader()
    # chunks of min(worker_chunk, ceil(batches / workers)): really chunked unless 1
    assert loader.chunk == min(worker_chunk, 4 if data == "simulated" else 3)
    assert len(loader) == len(want) // 2  # batches, not chunks
    _assert_same_stream(_epochs(loader), want)
    for split in ("val", "test"):
        _assert_same_stream(
            list(make(num_workers=2, worker_chunk=worker_chunk).loader(split)),
            list(make().loader(split)),
        )


@pytest.mark.parametrize("position", [1, 2, 3, 4])  # chunks of 3 over 5 batches: 0-2, 3-4
def test_resume_inside_a_chunk_gives_the_rest_of_the_stream(npy_pair, position):
    root = npy_pair[0]
    whole = _epochs(_files(root).train_dataloader())  # 2 epochs of 5 batches
    loader = _files(root, num_workers=2).train_dataloader()
    assert loader.chunk == 3
    loader.sampler.set_epoch(1)
    head = []
    for batch in loader:
        head.append(batch)
        if len(head) == position:
            break
    state = loader.state_dict()
    assert state == {"epoch": 1, "position": position}  # batches, not chunks
    _assert_same_stream(head, whole[5 : 5 + position])

    resumed = _files(root, num_workers=2).train_dataloader()
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert resumed.state_dict() == {"epoch": 1, "position": 5}
    _assert_same_stream(rest, whole[5 + position :])


def test_the_datamodule_state_resumes_a_chunked_loader(npy_pair):
    root = npy_pair[0]
    first = _files(root, num_workers=2)
    iterator = iter(first.train_dataloader())
    taken = [next(iterator) for _ in range(4)]
    second = _files(root, num_workers=2)
    second.load_state_dict(first.state_dict())
    _assert_same_stream(
        taken + list(second.train_dataloader()), _epochs(_files(root).train_dataloader(), 1)
    )


def test_a_chunk_splits_back_into_exactly_its_batches():
    batches = [
        {
            INPUTS: torch.arange(6 * n, dtype=torch.float32).reshape(n, 6),
            TARGETS: torch.arange(n),
            "scalar": torch.tensor(n),  # 0-d: travels as it is
            "names": [f"b{n}"] * n,  # not a tensor: travels as it is
        }
        for n in (3, 1, 4)
    ]
    chunk = Chunk.of(batches)
    assert chunk.parts[INPUTS].shape == (8, 6) and chunk.sizes[INPUTS] == [3, 1, 4]
    _assert_same_stream(
        [{k: v for k, v in b.items() if k != "names"} for b in chunk.split()],
        [{k: v for k, v in b.items() if k != "names"} for b in batches],
    )
    assert [b["names"] for b in chunk.split()] == [b["names"] for b in batches]
    views = chunk.split()
    assert views[1][INPUTS].data_ptr() == chunk.parts[INPUTS][3:].data_ptr()  # no copy

    differing = [{INPUTS: torch.ones(2)}, {INPUTS: torch.ones(2), "lengths": torch.ones(2)}]
    assert Chunk.of(differing).split() == differing
    with pytest.raises(ValueError, match="targets has 3 rows, expected 4"):
        Chunk.joined({INPUTS: torch.ones(4, 2), TARGETS: torch.ones(3)}, [2, 2])


def test_chunk_size_keeps_large_batches_one_per_item():
    class Sized:
        def __init__(self, rows):
            self.rows = rows

        def __getitem__(self, key):
            return {INPUTS: torch.zeros(self.rows, 1024, dtype=torch.uint8)}

    keys = BatchKeys(10)
    assert chunk_size(Sized(4), keys, 32) == 32  # 4 KiB per batch
    assert chunk_size(Sized(4), keys, 32, limit=20 * 1024) == 5
    assert chunk_size(Sized(64), keys, 32, limit=20 * 1024) == 1
    assert chunk_size(Sized(4), keys, 1) == 1


def test_chunked_keys_group_consecutive_keys_and_follow_the_epoch():
    keys = BatchKeys(9, rank=1, world_size=2)  # indices 1, 3, 5, 7
    chunked = ChunkedKeys(keys, size=3, workers=2)
    chunked.set_epoch(4)
    assert keys.epoch == 4
    assert list(chunked) == [[(4, 1), (4, 3)], [(4, 5), (4, 7)]]  # ceil(4 / 2 workers)
    assert len(chunked) == 2
    keys.resume_at(4, 1)
    assert list(ChunkedKeys(keys, size=2, workers=1)) == [[(4, 3), (4, 5)], [(4, 7)]]


def test_worker_chunk_must_be_positive(npy_pair):
    with pytest.raises(DataConfigError, match="data.worker_chunk must be >= 1, got 0"):
        _files(npy_pair[0], worker_chunk=0)
    with pytest.raises(DataConfigError, match="data.worker_chunk must be >= 1, got -1"):
        _simulated(worker_chunk=-1)
