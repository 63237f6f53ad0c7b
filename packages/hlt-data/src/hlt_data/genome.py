"""Genome-scale language-model data: windows of a reference FASTA, split by region.

``data=genome`` reads a FASTA of any size through ``hlt_data.genome_cache`` (a one-time
byte cache, read by ``os.pread``; each DataLoader worker opens it itself). Examples are
windows of ``seq_len`` bases tiled every ``stride`` bases over intervals: a BED file's rows
(``chrom start end [split]``, the layout of hyena-dna's and Basenji's ``sequences.bed``)
or, without one, every record whole. Splits are by region, never by shuffled windows:
the BED's split column (train, valid/val, test) or ``val_chroms``/``test_chroms``
(every other record trains); intervals of different splits may not overlap.

Tokens are those of ``CharTokenizer("ACGTN")`` (so ``data=fasta`` fine-tuning reads the
same ids); ambiguity codes read as N. The batch ``mask`` is 1 at called bases only
(A/C/G/T, and not lowercase with ``mask_lowercase``): N and padding count in no loss or
metric. Windows with fewer than ``min_called`` called bases are left out.

A batch is a pure function of its key ``(epoch, index)``: the training order, and with
``rc_aug``/``shift`` each window's reverse-complement coin and shift, come from a seed
of (seed, epoch, index), so a run resumed mid-epoch reads exactly the same batches.
Validation and test windows are in one fixed shuffled order (so ``limit_val_batches``
samples the whole split) and are never augmented.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hlt_data.base import KeyedDataModule
from hlt_data.batch import INPUTS, MASK, Batch
from hlt_data.errors import DataConfigError
from hlt_data.genome_cache import IUPAC, GenomeCache
from hlt_data.keys import EpochShuffle, batch_seed
from hlt_data.loader import WORKER_CHUNK
from hlt_data.splits import SPLITS
from hlt_data.tokenizers import CharTokenizer

BED_SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
TOKENIZER = CharTokenizer("ACGTN")  # ids shared with data=fasta's default alphabet
PADDING = 0  # the byte that pads a window shorter than seq_len (token 0, never counted)


def _tables(mask_lowercase: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Byte -> token id, byte -> counted, byte -> complementary byte (case kept)."""
    tokens = TOKENIZER.table.copy()
    ambiguous = np.frombuffer((IUPAC + IUPAC.lower()).encode(), dtype=np.uint8)
    tokens[ambiguous] = TOKENIZER.table[ord("N")]
    tokens[PADDING] = TOKENIZER.PAD
    counted = np.zeros(256, dtype=np.bool_)
    counted[np.frombuffer(b"ACGT" if mask_lowercase else b"ACGTacgt", dtype=np.uint8)] = True
    complement = np.arange(256, dtype=np.uint8)
    for a, b in ("AT", "CG", "RY", "KM", "BV", "DH"):
        for x, y in ((a, b), (a.lower(), b.lower())):
            complement[ord(x)], complement[ord(y)] = ord(y), ord(x)
    return tokens, counted, complement


@dataclass
class Intervals:
    """Regions of records: record index, ``[start, end)`` within it, and split name."""

    record: np.ndarray
    start: np.ndarray
    end: np.ndarray
    split: np.ndarray

    def of(self, split: str) -> Intervals:
        keep = self.split == split
        return Intervals(self.record[keep], self.start[keep], self.end[keep], self.split[keep])


def read_bed(path: str | Path, cache: GenomeCache) -> tuple[Intervals, bool]:
    """Rows ``chrom start end [split]`` (0-based, end exclusive); whether splits were given.

    Blank, ``#``, ``track`` and ``browser`` lines are skipped; every bad row is named.
    """
    rows: list[tuple[int, int, int, str]] = []
    with_split: bool | None = None
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise DataConfigError(f"data.intervals={path}: cannot be read ({error.strerror})") from None
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or fields[0].startswith(("#", "track", "browser")):
            continue
        where = f"data.intervals={path} line {number}"
        rows.append(bed_row(line, where, cache))
        if with_split is None:
            with_split = len(fields) > 3
        elif with_split != (len(fields) > 3):
            raise DataConfigError(f"{where}: some rows name a split and some do not")
    if not rows:
        raise DataConfigError(f"data.intervals={path}: no intervals")
    columns = list(zip(*rows, strict=True))
    records, starts, ends = (np.array(column, dtype=np.int64) for column in columns[:3])
    return Intervals(records, starts, ends, np.array(columns[3])), bool(with_split)


def bed_row(line: str, where: str, cache: GenomeCache) -> tuple[int, int, int, str]:
    """One BED row as ``(record, start, end, split)``; a bad field is named."""
    fields = line.split()
    if len(fields) < 3:
        raise DataConfigError(f"{where}: expected 'chrom start end [split]', got {line!r}")
    chrom, start, end = fields[0], fields[1], fields[2]
    if chrom not in cache.by_name:
        raise DataConfigError(f"{where}: chromosome {chrom!r} is not a record of the FASTA")
    try:
        lo, hi = int(start), int(end)
    except ValueError:
        raise DataConfigError(
            f"{where}: start {start!r} and end {end!r} must be integers"
        ) from None
    record = cache.by_name[chrom]
    if not 0 <= lo < hi <= cache.lengths[record]:
        raise DataConfigError(
            f"{where}: [{lo}, {hi}) is not inside {chrom} (length {cache.lengths[record]})"
        )
    if len(fields) > 3 and fields[3].lower() not in BED_SPLITS:
        raise DataConfigError(f"{where}: split {fields[3]!r} is not one of {sorted(BED_SPLITS)}")
    return record, lo, hi, BED_SPLITS[fields[3].lower()] if len(fields) > 3 else "train"


def chromosome_splits(
    intervals: Intervals, cache: GenomeCache, val: Sequence[str], test: Sequence[str]
) -> Intervals:
    """Intervals with split set by chromosome: ``val``, ``test``, every other trains."""
    for key, names in (("val_chroms", val), ("test_chroms", test)):
        for name in names:
            if name not in cache.by_name:
                known = ", ".join(cache.names[:5]) + (", ..." if len(cache.names) > 5 else "")
                raise DataConfigError(
                    f"data.{key}: {name!r} is not a record of {cache.fasta} (records: {known})"
                )
    both = sorted(set(val) & set(test))
    if both:
        raise DataConfigError(f"data.val_chroms and data.test_chroms both list {both[0]!r}")
    names = np.array(cache.names, dtype=object)[intervals.record]
    split = np.where(
        np.isin(names, list(test)), "test", np.where(np.isin(names, list(val)), "val", "train")
    )
    return Intervals(intervals.record, intervals.start, intervals.end, split)


def check_disjoint(intervals: Intervals, cache: GenomeCache) -> None:
    """No base may lie in intervals of two splits (its windows would leak between them).

    Sorted by start within a record, an interval overlaps an earlier one of another split
    exactly when it starts before the furthest end reached by that split so far.
    """
    order = np.lexsort((intervals.start, intervals.record))
    reach: dict[str, int] = {}
    current = -1
    for i in order:
        record, start, split = (
            int(intervals.record[i]),
            int(intervals.start[i]),
            str(intervals.split[i]),
        )
        if record != current:
            reach, current = {}, record
        for other, end in reach.items():
            if other != split and start < end:
                raise DataConfigError(
                    f"data.intervals: {cache.names[record]}:{start}-{int(intervals.end[i])} "
                    f"({split}) overlaps an interval of split {other}; splits must not share bases"
                )
        reach[split] = max(reach.get(split, 0), int(intervals.end[i]))


@dataclass
class Windows:
    """Windows of one split, in cache coordinates: ``[start, start + length)``, inside the
    interval ``[low, high)`` that a shift may not leave.

    Kept per window are its start (int64) and its interval's number (int32): 12 bytes a
    window (about 35 MB for hg38 in 1 kbp windows); lengths and interval bounds are
    looked up for the rows a batch reads (``rows``).
    """

    start: np.ndarray
    interval: np.ndarray
    spans: np.ndarray  # (2, intervals): each interval's [low, high)
    seq_len: int

    def __len__(self) -> int:
        return len(self.start)

    def rows(self, rows: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``start, length, low, high`` of the windows ``rows``."""
        start = self.start[rows]
        low, high = self.spans[:, self.interval[rows]]
        return start, np.minimum(self.seq_len, high - start), low, high

    @property
    def length(self) -> np.ndarray:
        return self.rows(slice(None))[1]

    @property
    def low(self) -> np.ndarray:
        return self.rows(slice(None))[2]

    @property
    def high(self) -> np.ndarray:
        return self.rows(slice(None))[3]

    def select(self, keep: np.ndarray) -> Windows:
        return Windows(self.start[keep], self.interval[keep], self.spans, self.seq_len)


def tile(intervals: Intervals, cache: GenomeCache, seq_len: int, stride: int) -> Windows:
    """Windows of ``seq_len`` every ``stride`` bases from each interval's start, as many
    as fit whole; an interval shorter than ``seq_len`` gives one (padded) window."""
    size = intervals.end - intervals.start
    counts = np.where(size <= seq_len, 1, (size - seq_len) // stride + 1)
    interval = np.repeat(np.arange(len(size), dtype=np.int32), counts)
    base = cache.offsets[intervals.record]
    spans = np.stack([base + intervals.start, base + intervals.end])
    # window j of interval i starts at low_i + (j - first_i) * stride
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    start = np.arange(int(counts.sum()), dtype=np.int64)
    start -= first[interval]
    start *= stride
    start += spans[0, interval]
    return Windows(start, interval, spans, seq_len)


class GenomeBatches(Dataset):
    """Item ``(epoch, index)``: a batch of windows, tokens and mask, read from the cache.

    Training windows come in an order drawn per epoch; val and test in one fixed order.
    ``rc_aug`` reverse-complements each window with probability 1/2 and ``shift`` moves
    it by up to that many bases either way (inside its interval), from the batch's seed.
    """

    def __init__(
        self,
        cache: GenomeCache,
        windows: Windows,
        split: str,
        seq_len: int,
        batch_size: int,
        seed: int,
        mask_lowercase: bool,
        rc_aug: bool = False,
        shift: int = 0,
    ) -> None:
        self.cache = cache
        self.windows = windows
        self.split = split
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.seed = seed
        self.tokens, self.counted, self.complement = _tables(mask_lowercase)
        self.rc_aug = rc_aug
        self.shift = shift
        rows = np.arange(len(windows), dtype=np.min_scalar_type(len(windows)))  # 4 bytes for hg38
        self.shuffled = EpochShuffle(rows, seed, split)

    def order(self, epoch: int) -> np.ndarray:
        return self.shuffled(epoch if self.split == "train" else 0)

    def raw(self, key: tuple[int, int]) -> np.ndarray:
        """The batch's bytes ``(batch, seq_len)``, augmented, padded with ``PADDING``."""
        epoch, index = key
        rows = self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        start, length, low, high = self.windows.rows(rows)
        flips = np.zeros(len(rows), dtype=np.bool_)
        if self.rc_aug or self.shift:
            rng = np.random.default_rng(batch_seed(self.seed, self.split, epoch, index))
            moves = rng.integers(-self.shift, self.shift + 1, size=len(rows))
            start = np.clip(start + moves, low, np.maximum(low, high - length))
            flips = (rng.random(len(rows)) < 0.5) & self.rc_aug
        out = np.full((len(rows), self.seq_len), PADDING, dtype=np.uint8)
        for i, (s, n) in enumerate(zip(start.tolist(), length.tolist(), strict=True)):
            window = self.cache.read(s, n)
            out[i, :n] = self.complement[window[::-1]] if flips[i] else window
        return out

    def __getitem__(self, key: tuple[int, int]) -> Batch:
        raw = self.raw(key)
        return {
            INPUTS: torch.from_numpy(self.tokens[raw]),
            MASK: torch.from_numpy(self.counted[raw]),
        }


def check_settings(at_least_one: dict[str, int], min_called: int, shift: int, iupac: str) -> None:
    """The numeric settings in range and ``iupac`` one of its two policies, before any read."""
    for key, value, least in (
        *((key, value, 1) for key, value in at_least_one.items()),
        ("min_called", min_called, 1),
        ("shift", shift, 0),
    ):
        if value < least:
            raise DataConfigError(f"data.{key} must be >= {least}, got {value}")
    if iupac not in ("n", "error"):
        raise DataConfigError(f"data.iupac={iupac!r} must be n or error")


def check_records(cache: GenomeCache, path: str | Path, iupac: str) -> None:
    """Record names unique; under ``iupac=error``, no ambiguity code (the first is named)."""
    twice = [name for name, n in Counter(cache.names).items() if n > 1]
    if twice:
        raise DataConfigError(f"data.path={path}: record name {twice[0]!r} appears twice")
    ambiguous = cache.first_ambiguous
    if iupac == "error" and ambiguous is not None:
        raise DataConfigError(
            f"data.path={path} record '{ambiguous['record']}' position "
            f"{ambiguous['position']}: ambiguity code {ambiguous['code']!r} "
            "(data.iupac=error; data.iupac=n reads it as N)"
        )


class GenomeDataModule(KeyedDataModule):
    """Windows of a reference genome for language modelling (see the module docstring).

    ``stride`` defaults to ``seq_len`` (windows side by side). ``iupac`` is ``n``
    (ambiguity codes read as N) or ``error`` (the first one found is named).
    """

    def __init__(
        self,
        path: str | Path,
        seq_len: int = 1024,
        intervals: str | Path | None = None,
        stride: int | None = None,
        val_chroms: Sequence[str] = (),
        test_chroms: Sequence[str] = (),
        min_called: int = 1,
        mask_lowercase: bool = False,
        iupac: str = "n",
        rc_aug: bool = False,
        shift: int = 0,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        seed: int = 0,
        # the loader settings of KeyedDataModule, as keywords so that a data config sets them
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        worker_chunk: int = WORKER_CHUNK,
    ) -> None:
        super().__init__(num_workers, pin_memory, persistent_workers, worker_chunk)
        stride = seq_len if stride is None else stride
        check_settings(
            {"seq_len": seq_len, "stride": stride, "batch_size": batch_size},
            min_called=min_called,
            shift=shift,
            iupac=iupac,
        )
        self.cache = GenomeCache(path, cache_dir)
        check_records(self.cache, path, iupac)
        regions = self._regions(intervals, list(val_chroms), list(test_chroms))
        check_disjoint(regions, self.cache)
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed
        self.mask_lowercase, self.rc_aug, self.shift = mask_lowercase, rc_aug, shift
        self.windows = {
            split: self._called(tile(regions.of(split), self.cache, seq_len, stride), min_called)
            for split in SPLITS
        }
        self._check_each_split_fills_a_batch(min_called)

    def _check_each_split_fills_a_batch(self, min_called: int) -> None:
        for split in SPLITS:
            if self.num_batches(split) < 1:
                raise DataConfigError(
                    f"split {split} has {len(self.windows[split])} windows of "
                    f"data.seq_len={self.seq_len} with >= data.min_called={min_called} called "
                    f"bases: fewer than one batch of data.batch_size={self.batch_size}"
                    + (
                        ""
                        if split == "train"
                        else f" (choose its region with data.{split}_chroms or a BED split column)"
                    )
                )

    def _regions(self, bed: str | Path | None, val: list[str], test: list[str]) -> Intervals:
        cache = self.cache
        if bed is None:
            whole = np.arange(len(cache.names), dtype=np.int64)
            regions = Intervals(
                whole, np.zeros_like(whole), cache.lengths.copy(), np.full(len(whole), "train")
            )
            return chromosome_splits(regions, cache, val, test)
        regions, with_split = read_bed(bed, cache)
        if with_split and (val or test):
            raise DataConfigError(
                f"data.intervals={bed} names splits in its 4th column; leave data.val_chroms "
                "and data.test_chroms empty (or drop that column)"
            )
        return regions if with_split else chromosome_splits(regions, cache, val, test)

    def _called(self, windows: Windows, min_called: int) -> Windows:
        """The windows with at least ``min_called`` counted bases."""
        length = windows.length
        end = windows.start + length
        uncounted = self.cache.count("uncalled", windows.start, end)
        if self.mask_lowercase:
            uncounted += self.cache.count("soft", windows.start, end)
        return windows.select(length - uncounted >= min_called)

    @property
    def dims(self) -> dict[str, Any]:
        return {"vocab_size": TOKENIZER.vocab_size, "seq_len": self.seq_len}

    def num_batches(self, split: str) -> int:
        count = len(self.windows[split])
        if split == "train":  # whole batches only: every step sees batch_size windows
            return count // self.batch_size
        return math.ceil(count / self.batch_size)

    def dataset(self, split: str) -> GenomeBatches:
        train = split == "train"
        return GenomeBatches(
            self.cache,
            self.windows[split],
            split,
            self.seq_len,
            self.batch_size,
            self.seed,
            self.mask_lowercase,
            rc_aug=self.rc_aug and train,
            shift=self.shift if train else 0,
        )
