import numpy as np
import pytest
import torch

from hlt_data import (
    CharTokenizer,
    DataConfigError,
    FastaDataModule,
    FileDataModule,
    GlobFiles,
    ManifestFiles,
    NpyReader,
    NpzReader,
    SequenceReader,
    TableReader,
)
from hlt_data.batch import INPUTS, MASK, TARGETS

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def _dm(files, reader=None, **kwargs):
    options = {"batch_size": 4, "split_fractions": FRACTIONS, "normalize": False}
    options.update(kwargs)
    return FileDataModule(files, reader or NpyReader(), **options)


def _all(loader):
    return torch.cat([batch[INPUTS] for batch in loader])


def test_npy_files_are_memory_mapped_and_dims_are_stated(npy_pair):
    root = npy_pair[0]
    dm = _dm(GlobFiles(root, "inputs.npy"))
    assert isinstance(dm.examples["train"].tables[0].inputs, np.memmap)
    assert dm.dims == {"input_dim": 3, "num_classes": 4, "labels": ["0", "1", "2", "3"]}
    batch = next(iter(dm.train_dataloader()))
    assert batch[INPUTS].dtype == torch.float32 and batch[TARGETS].dtype == torch.int64


def test_fraction_splits_are_disjoint_complete_and_seeded(npy_pair):
    root, inputs, _ = npy_pair
    dm = _dm(GlobFiles(root, "inputs.npy"), split_seed=5)
    rows = [dm.rows[s] for s in ("train", "val", "test")]
    assert [len(r) for r in rows] == [24, 8, 8]
    assert sorted(np.concatenate(rows).tolist()) == list(range(40))
    again = _dm(GlobFiles(root, "inputs.npy"), split_seed=5)
    other = _dm(GlobFiles(root, "inputs.npy"), split_seed=6)
    assert np.array_equal(again.rows["val"], dm.rows["val"])
    assert not np.array_equal(other.rows["val"], dm.rows["val"])
    assert torch.equal(_all(dm.val_dataloader()), torch.from_numpy(inputs[dm.rows["val"]]))


def test_explicit_per_split_folders_and_manifest(tmp_path):
    for split, n in {"train": 8, "val": 4, "test": 4}.items():
        (tmp_path / split).mkdir()
        for shard in range(2):
            np.save(tmp_path / split / f"{shard}.inputs.npy", np.full((n, 2), shard, np.float32))
            np.save(tmp_path / split / f"{shard}.targets.npy", np.arange(n))
    (tmp_path / "test.txt").write_text("# test files\ntest/0.inputs.npy\n\ntest/1.inputs.npy\n")
    files = {
        "train": GlobFiles(tmp_path / "train", "*.inputs.npy"),
        "val": [tmp_path / "val" / "0.inputs.npy", tmp_path / "val" / "1.inputs.npy"],
        "test": ManifestFiles(tmp_path / "test.txt"),
    }
    dm = _dm(files, split_fractions=None)
    assert {s: len(dm.rows[s]) for s in dm.rows} == {"train": 16, "val": 8, "test": 8}
    assert sorted(_all(dm.test_dataloader())[:, 0].tolist()) == [0] * 4 + [1] * 4
    assert len(list(dm.train_dataloader())) == 4


def test_workers_and_ranks_read_each_training_example_once(npy_pair):
    root = npy_pair[0]
    dm = _dm(GlobFiles(root, "inputs.npy"), num_workers=2)
    seen = _all(dm.train_dataloader())
    assert len(seen) == 24 and len(torch.unique(seen, dim=0)) == 24
    assert torch.equal(seen, _all(_dm(GlobFiles(root, "inputs.npy")).train_dataloader()))
    ranks = [_all(dm.loader("train", rank=r, world_size=2)) for r in range(2)]
    both = torch.cat(ranks)
    assert len(torch.unique(both, dim=0)) == len(both) == 24


def test_npz_and_csv_readers(tmp_path):
    np.savez(tmp_path / "a.npz", inputs=np.ones((10, 2)), targets=np.arange(10) % 3)
    dm = _dm([tmp_path / "a.npz"], NpzReader(), batch_size=2)
    assert dm.dims == {"input_dim": 2, "num_classes": 3, "labels": ["0", "1", "2"]}
    (tmp_path / "t.csv").write_text("x,y,label,score\n" + "1,2,0,0.5\n3,4,1,1.5\n" * 5)
    dm = _dm([tmp_path / "t.csv"], TableReader(target=["score"]), batch_size=2)
    assert dm.dims == {"input_dim": 3, "output_dim": 1}
    dm = _dm(
        [tmp_path / "t.csv"],
        TableReader(target="label", features=["y"]),
        batch_size=2,
        normalize=False,
    )
    assert dm.dims == {"input_dim": 1, "num_classes": 2, "labels": ["0", "1"]}
    assert set(_all(dm.train_dataloader()).flatten().tolist()) <= {2.0, 4.0}


def test_fasta_with_labels_and_unlabelled_text_with_a_padding_mask(tmp_path):
    fasta = "".join(f">s{i} label={i % 2}\nACGT\nAC\n" for i in range(10))
    (tmp_path / "a.fa").write_text(fasta)
    reader = SequenceReader(CharTokenizer("ACGT"), seq_len=8, label_key="label")
    dm = _dm([tmp_path / "a.fa"], reader, batch_size=2)
    assert dm.dims == {"seq_len": 8, "vocab_size": 6, "num_classes": 2, "labels": ["0", "1"]}
    batch = next(iter(dm.val_dataloader()))
    assert batch[INPUTS][0].tolist() == [2, 3, 4, 5, 2, 3, 0, 0]
    assert batch[MASK][0].tolist() == [True] * 6 + [False] * 2
    (tmp_path / "b.txt").write_text("acgtacgtac\nGA\n" * 5)
    table = SequenceReader(CharTokenizer("ACGT"), seq_len=4, long_records="crop")(
        tmp_path / "b.txt"
    )
    assert table.targets is None and table.ids is not None and table.ids[1] == "line_2"
    assert table.inputs[0].tolist() == [2, 3, 4, 5] and table.inputs[1].tolist() == [4, 2, 0, 0]
    assert table.extras[MASK][1].tolist() == [True, True, False, False]


def test_a_getter_that_matches_nothing_names_root_and_pattern(tmp_path):
    with pytest.raises(DataConfigError, match=rf"pattern '\*\.npy' under root '{tmp_path}'"):
        GlobFiles(tmp_path, "*.npy")()
    with pytest.raises(DataConfigError, match=r"data root '.*nowhere' is not a folder"):
        GlobFiles(tmp_path / "nowhere", "*.npy")()
    with pytest.raises(DataConfigError, match=r"manifest '.*m\.txt' cannot be read"):
        ManifestFiles(tmp_path / "m.txt")()
    (tmp_path / "m.txt").write_text("gone.npy\n")
    with pytest.raises(DataConfigError, match=r"m\.txt' line 1: no such file '.*gone\.npy'"):
        ManifestFiles(tmp_path / "m.txt")()


def test_corrupt_and_unreadable_files_are_named(tmp_path, npy_pair):
    root = npy_pair[0]
    (root / "inputs.npy").write_bytes(b"not an array")
    with pytest.raises(DataConfigError, match=r"inputs\.npy: unreadable or corrupt \.npy"):
        _dm(GlobFiles(root, "inputs.npy"))
    (tmp_path / "bad.npz").write_bytes(b"PK nonsense")
    with pytest.raises(DataConfigError, match=r"bad\.npz: unreadable or corrupt \.npz"):
        _dm([tmp_path / "bad.npz"], NpzReader())
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    with pytest.raises(DataConfigError, match=r"x\.npy: name lacks the inputs tag 'inputs'"):
        _dm([tmp_path / "x.npy"])
    (tmp_path / "bad.csv").write_text("a,target\n1,2\noops,3\n")
    with pytest.raises(DataConfigError, match=r"bad\.csv row 2 column 'a': 'oops' is not a"):
        _dm([tmp_path / "bad.csv"], TableReader())


def test_inconsistent_shapes_and_columns_name_the_file_and_the_expectation(tmp_path):
    np.save(tmp_path / "a.inputs.npy", np.zeros((10, 3), np.float32))
    np.save(tmp_path / "a.targets.npy", np.zeros(10, np.int64))
    np.save(tmp_path / "b.inputs.npy", np.zeros((10, 4), np.float32))
    np.save(tmp_path / "b.targets.npy", np.zeros(10, np.int64))
    with pytest.raises(
        DataConfigError,
        match=r"b\.inputs\.npy: inputs of shape \(4,\) per example, expected \(3,\) as in ",
    ):
        _dm(GlobFiles(tmp_path, "*.inputs.npy"))
    np.save(tmp_path / "b.inputs.npy", np.zeros((10, 3), np.float32))
    np.save(tmp_path / "b.targets.npy", np.zeros(9, np.int64))
    with pytest.raises(DataConfigError, match=r"b\.inputs\.npy: targets has 9 rows but inputs"):
        _dm(GlobFiles(tmp_path, "*.inputs.npy"))
    (tmp_path / "a.csv").write_text("x,y,target\n" + "1,2,0\n" * 5)
    (tmp_path / "b.csv").write_text("x,z,target\n" + "1,2,0\n" * 5)
    expected = r"b\.csv: columns \['x', 'z'\], expected \['x', 'y'\]"
    with pytest.raises(DataConfigError, match=expected):
        _dm(GlobFiles(tmp_path, "*.csv"), TableReader())
    with pytest.raises(DataConfigError, match=r"a\.csv: no target column 'label' \(data\.target"):
        _dm([tmp_path / "a.csv"], TableReader("label"))


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({"train": 0.8, "val": 0.3, "test": 0.1}, r"data\.split_fractions sum to 1\.2"),
        ({"train": 0.8, "val": -0.1, "test": 0.3}, r"data\.split_fractions\.val=-0\.1 must be"),
        ({"train": 0.9, "val": 0.1}, r"data\.split_fractions\.test is missing"),
        ({"train": 0.5, "val": 0.2, "test": 0.2, "dev": 0.1}, r"split_fractions\.dev: unknown"),
        ({"train": 0.98, "val": 0.01, "test": 0.01}, r"split_fractions\.val=0\.01 of 40"),
    ],
)
def test_invalid_split_fractions_are_named(npy_pair, fractions, message):
    with pytest.raises(DataConfigError, match=message):
        _dm(GlobFiles(npy_pair[0], "inputs.npy"), split_fractions=fractions)


def _long_fasta(path, length=250):
    rng = np.random.default_rng(0)
    long = "".join(rng.choice(list("ACGT"), length))
    short = [f">s{i} label={'ab'[i % 2]}\nACGTACGT\n" for i in range(19)]
    path.write_text(f">chrL label=a\n{long}\n" + "".join(short))
    return path, long


def test_a_record_longer_than_seq_len_is_named_by_default(tmp_path):
    path, _ = _long_fasta(tmp_path / "long.fa")
    with pytest.raises(
        DataConfigError, match=r"record 'chrL': 250 characters, longer than data.seq_len=100"
    ):
        FastaDataModule(path, seq_len=100, batch_size=2)


def test_seq_len_null_never_pads_to_a_chromosome(tmp_path):
    path, _ = _long_fasta(tmp_path / "chrom.fa", length=200_000)
    with pytest.raises(
        DataConfigError, match=r"'chrL': 200,000 characters, longer than data.max_seq_len=16384"
    ):
        FastaDataModule(path, batch_size=2)
    dm = FastaDataModule(path, batch_size=2, long_records="window")
    assert dm.dims["seq_len"] == 16384  # the cap, not the record


def test_long_records_crop_or_window(tmp_path):
    path, long = _long_fasta(tmp_path / "long.fa")
    reader = SequenceReader(
        CharTokenizer("ACGT"), seq_len=100, label_key="label", long_records="crop"
    )
    crop = reader(path)
    assert len(crop) == 20 and crop.ids[0] == "chrL"
    assert crop.inputs[0].tolist() == CharTokenizer("ACGT").encode(long[:100]).tolist()
    reader.long_records = "window"
    window = reader(path)
    assert len(window) == 3 + 19 and window.ids[:3] == [
        "chrL:1-100",
        "chrL:101-200",
        "chrL:201-250",
    ]
    assert window.targets is not None and window.targets[:4].tolist() == ["a", "a", "a", "a"]
    assert window.inputs[2, :50].tolist() == CharTokenizer("ACGT").encode(long[200:]).tolist()
    assert window.extras[MASK][2].sum() == 50
    (tmp_path / "bad.fa").write_text(">x\n" + "A" * 150 + "Z\n")
    with pytest.raises(DataConfigError, match="record 'x' position 151: 'Z'"):
        reader(tmp_path / "bad.fa")
