"""data=genome: the byte cache, windows, BED intervals, region splits, masking and
augmentation, each checked against a small FASTA written here."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hlt_data import DataConfigError, GenomeDataModule
from hlt_data.batch import INPUTS, MASK
from hlt_data.genome import TOKENIZER
from hlt_data.genome_cache import GenomeCache

A, C, G, T, N = (int(TOKENIZER.table[ord(b)]) for b in "ACGTN")


def write_fasta(path, records, width=60):
    """Records as FASTA with ``width``-base lines and a description after the name."""
    with open(path, "w") as handle:
        for name, sequence in records.items():
            handle.write(f">{name} some description\n")
            for i in range(0, len(sequence), width):
                handle.write(sequence[i : i + width] + "\n")
    return path


def random_bases(length, seed):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), length))


@pytest.fixture
def genome(tmp_path):
    """chr1 (1000 bases, N at 100-220), chr2 (350, N at 100-220), chr3 (500, N at 100-220)."""
    records = {}
    for seed, (name, length) in enumerate({"chr1": 1000, "chr2": 350, "chr3": 500}.items()):
        bases = random_bases(length, seed)
        records[name] = bases[:100] + "N" * 120 + bases[220:]
    return write_fasta(tmp_path / "genome.fa", records), records


def module(path, **options):
    options = {
        "seq_len": 100,
        "batch_size": 2,
        "val_chroms": ["chr2"],
        "test_chroms": ["chr3"],
    } | options
    return GenomeDataModule(path, **options)


def test_cache_holds_the_bases_without_line_breaks(genome):
    path, records = genome
    cache = GenomeCache(path)
    assert cache.names == ["chr1", "chr2", "chr3"]
    assert cache.lengths.tolist() == [1000, 350, 500]
    joined = "".join(records.values()).encode()
    assert bytes(cache.read(0, len(joined))) == joined
    assert bytes(cache.read(1003, 5)) == records["chr2"][3:8].encode()
    # N runs in cache coordinates, one per record
    assert cache.runs("uncalled").tolist() == [[100, 1100, 1450], [220, 1220, 1570]]
    assert cache.count("uncalled", np.array([0, 150]), np.array([150, 1200])).tolist() == [
        50,
        70 + 100,
    ]


def test_cache_is_reused_and_rebuilt_when_the_fasta_changes(genome):
    path, _ = genome
    first = GenomeCache(path)
    stamp = (first.folder / "index.json").stat().st_mtime_ns
    assert (GenomeCache(path).folder / "index.json").stat().st_mtime_ns == stamp
    write_fasta(path, {"only": "ACGT" * 10})
    assert GenomeCache(path).names == ["only"]


def test_tiling_matches_a_hand_count(genome):
    path, _ = genome
    dm = module(path, stride=50)
    # chr1: (1000-100)//50+1 = 19 windows, less [100, 200) which is all N
    starts = dm.windows["train"].start.tolist()
    assert starts == [0, 50, *range(150, 901, 50)]
    # chr2 starts at 1000: 6 windows less one all N; chr3 at 1350: 9 less one
    assert len(dm.windows["val"]) == 5 and len(dm.windows["test"]) == 8
    assert dm.num_batches("train") == 9 and dm.num_batches("test") == 4


def test_min_called_skips_windows_with_too_few_called_bases(genome):
    path, _ = genome
    # N at [100, 220): [50, 150) holds 50 called bases, [150, 250) 30, [200, 300) 80
    starts = module(path, stride=50, min_called=60).windows["train"].start.tolist()
    assert starts[:2] == [0, 200] and len(starts) == 19 - 3


def test_bed_rows_and_split_column_make_the_windows(genome, tmp_path):
    path, _ = genome
    bed = tmp_path / "sequences.bed"
    bed.write_text(
        "# comment\ntrack name=x\nchr1\t0\t400\ttrain\nchr1\t500\t1000\ttrain\n"
        "chr2\t0\t350\tvalid\nchr3\t250\t500\ttest\n"
    )
    dm = GenomeDataModule(path, seq_len=100, stride=100, intervals=bed, batch_size=2)
    assert dm.windows["train"].start.tolist() == [0, 200, 300, 500, 600, 700, 800, 900]
    assert dm.windows["val"].start.tolist() == [1000, 1200]
    assert dm.windows["test"].start.tolist() == [1350 + 250, 1350 + 350]
    assert dm.windows["test"].length.tolist() == [100, 100]


@pytest.mark.parametrize(
    ("row", "named"),
    [
        ("chrX\t0\t10\ttrain", "chromosome 'chrX'"),
        ("chr1\t0\t2000\ttrain", "[0, 2000) is not inside chr1"),
        ("chr1\t0\tten\ttrain", "must be integers"),
        ("chr1\t0\t10\tholdout", "split 'holdout'"),
        ("chr1\t0", "expected 'chrom start end [split]'"),
    ],
)
def test_bad_bed_rows_are_named_by_line(genome, tmp_path, row, named):
    bed = tmp_path / "bad.bed"
    bed.write_text(f"chr2\t0\t300\tval\n{row}\n")
    with pytest.raises(DataConfigError, match="line 2") as error:
        GenomeDataModule(genome[0], seq_len=100, intervals=bed)
    assert named in str(error.value)


def test_overlapping_intervals_of_two_splits_are_refused(genome, tmp_path):
    bed = tmp_path / "leak.bed"
    bed.write_text("chr1\t0\t600\ttrain\nchr1\t550\t1000\ttest\nchr2\t0\t300\tval\n")
    with pytest.raises(DataConfigError, match=r"chr1:550-1000 \(test\) overlaps .* train"):
        GenomeDataModule(genome[0], seq_len=100, intervals=bed)


def _bases_read(dm, split, epochs=2):
    """Every cache position any batch of ``split`` read, over ``epochs`` epochs."""
    dataset = dm.dataset(split)
    positions = set()
    for epoch in range(epochs):
        for index in range(dm.num_batches(split)):
            rows = dataset.order(epoch)[index * dm.batch_size : (index + 1) * dm.batch_size]
            for start, length, low, high in zip(
                *(getattr(dm.windows[split], f)[rows] for f in ("start", "length", "low", "high")),
                strict=True,
            ):
                # a shift moves a window within [low, high): all of that may be read
                positions.update(
                    range(
                        low if dataset.shift else start, high if dataset.shift else start + length
                    )
                )
    return positions


def test_no_base_of_a_val_or_test_window_lies_in_a_training_window(genome, tmp_path):
    path, _ = genome
    bed = tmp_path / "mixed.bed"  # splits interleaved inside chromosomes
    bed.write_text(
        "chr1\t0\t300\ttrain\nchr1\t300\t600\tval\nchr1\t600\t1000\ttest\n"
        "chr2\t0\t350\ttrain\nchr3\t0\t250\tval\nchr3\t250\t500\ttrain\n"
    )
    for dm in (
        GenomeDataModule(path, seq_len=100, stride=30, intervals=bed, batch_size=2, shift=40),
        module(path, stride=30, shift=40, rc_aug=True),
    ):
        train = _bases_read(dm, "train")
        for split in ("val", "test"):
            held_out = _bases_read(dm, split)
            assert held_out and not held_out & train


def test_n_iupac_and_lowercase_are_tokens_and_mask(tmp_path):
    path = write_fasta(
        tmp_path / "codes.fa",
        {"a": "ACGTNRYacgtn" + "A" * 88, "b": "C" * 100, "c": "G" * 100},
    )
    options = {"seq_len": 100, "batch_size": 1, "val_chroms": ["b"], "test_chroms": ["c"]}
    batch = GenomeDataModule(path, **options).dataset("train")[(0, 0)]
    assert batch[INPUTS][0, :12].tolist() == [A, C, G, T, N, N, N, A, C, G, T, N]
    assert batch[MASK][0, :12].tolist() == [1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0]
    soft = GenomeDataModule(path, mask_lowercase=True, **options).dataset("train")[(0, 0)]
    assert soft[MASK][0, :12].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(DataConfigError, match=r"record 'a' position 6: ambiguity code 'R'"):
        GenomeDataModule(path, iupac="error", **options)


def test_a_character_that_is_no_base_is_named(tmp_path):
    path = tmp_path / "bad.fa"
    path.write_text(">one\nACGT\nAC1T\n")
    with pytest.raises(DataConfigError, match=r"record 'one' position 7: '1'"):
        GenomeCache(path)


def test_compressed_input_says_how_to_decompress(tmp_path):
    path = tmp_path / "genome.fa.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00rest")
    with pytest.raises(DataConfigError, match="gunzip -k"):
        GenomeCache(path)


def test_an_all_n_window_is_skipped(tmp_path):
    path = write_fasta(
        tmp_path / "gap.fa", {"a": "N" * 100 + random_bases(200, 1), "b": "C" * 100, "c": "G" * 100}
    )
    dm = GenomeDataModule(path, seq_len=100, batch_size=1, val_chroms=["b"], test_chroms=["c"])
    assert dm.windows["train"].start.tolist() == [100, 200]


def test_reverse_complement_of_a_known_window(tmp_path):
    forward = "AACGTTTGCa" + "CCCCCGGGGG" * 9
    path = write_fasta(tmp_path / "rc.fa", {"a": forward, "b": "C" * 100, "c": "G" * 100})
    options = {"seq_len": 100, "batch_size": 1, "val_chroms": ["b"], "test_chroms": ["c"]}
    dm = GenomeDataModule(path, rc_aug=True, **options)
    dataset = dm.dataset("train")
    raws = {bytes(dataset.raw((epoch, 0))[0]) for epoch in range(20)}
    reverse = forward[::-1].translate(str.maketrans("ACGTacgt", "TGCAtgca"))
    assert raws == {forward.encode(), reverse.encode()}  # both strands, and only they
    assert reverse.startswith("CCCCCGGGGG") and reverse[90:] == "tGCAAACGTT"


def test_augmentation_is_seeded_and_training_only(genome):
    path, records = genome
    dm = module(path, stride=50, rc_aug=True, shift=20)
    train = dm.dataset("train")
    again = module(path, stride=50, rc_aug=True, shift=20).dataset("train")
    assert np.array_equal(train.raw((3, 2)), again.raw((3, 2)))  # same key, same batch
    assert not np.array_equal(train.raw((0, 2)), train.raw((1, 2)))
    plain = module(path, stride=50)
    for split in ("val", "test"):
        augmented, untouched = dm.dataset(split), plain.dataset(split)
        for index in range(dm.num_batches(split)):
            batch = augmented[(5, index)]
            assert torch.equal(batch[INPUTS], untouched[(0, index)][INPUTS])
    # a val window is the FASTA's bases, as they are
    val = dm.dataset("val")
    row = int(val.order(0)[0])
    start = int(dm.windows["val"].start[row]) - 1000
    assert bytes(val.raw((0, 0))[0]) == records["chr2"][start : start + 100].encode()


def test_workers_open_the_cache_themselves(genome):
    path, _ = genome
    dm = module(path, stride=50, num_workers=2)
    assert len(dm.cache.read(0, 1850)) == 1850  # opened here: a pickled copy opens its own
    assert pickle.loads(pickle.dumps(dm.dataset("train"))).cache.bases._fd is None
    with_workers = list(dm.loader("train"))
    in_process = list(module(path, stride=50).loader("train"))
    assert len(with_workers) == len(in_process) == 9
    for mapped, read in zip(with_workers, in_process, strict=True):
        assert torch.equal(mapped[INPUTS], read[INPUTS])


def test_bad_options_are_named(genome):
    path, _ = genome
    with pytest.raises(DataConfigError, match="data.val_chroms: 'chr9'"):
        module(path, val_chroms=["chr9"])
    with pytest.raises(DataConfigError, match="split test has 0 windows"):
        module(path, test_chroms=[])
    with pytest.raises(DataConfigError, match="data.seq_len must be >= 1"):
        module(path, seq_len=0)


def test_windows_are_read_without_mapping_the_cache(genome):
    """A mapped page stays resident once touched: reading windows must leave no map of
    the cache, so a long run's memory does not grow towards the genome's size."""
    path, _ = genome
    dm = module(path, stride=50, rc_aug=True, shift=20)
    for index in range(dm.num_batches("train")):
        dm.dataset("train")[(0, index)]
    assert str(dm.cache.folder / "bases.u8") not in Path("/proc/self/maps").read_text()
