"""A FASTA genome as a byte cache: one byte per base, read by random access.

Why a cache of our own rather than an indexed reader (pyfaidx, pyfastx): a window is then
one read of its bytes, with no per-read parsing of line layouts and no Python string per
window; it needs no dependency beyond numpy; and every DataLoader worker reads the same
file, so the operating system's page cache holds the genome once, whatever the number
of workers. The price is one pass over the FASTA and a second copy of its bases
on disk (3.1 GB for hg38). Compressed input (gzip, bgzip) is not read: decompress it once.

The cache is built once, streaming in blocks of ``BLOCK`` bytes (memory stays constant in
the genome's size), into a folder beside the FASTA (``<fasta>.hlt-cache``) or, where
that folder cannot be written, under ``cache_dir`` (default ``~/.cache/hlt/genomes``);
it is rebuilt when the FASTA's size or modification time changes. The folder holds

- ``bases.u8``: every record's bytes, concatenated, line breaks removed, case kept;
- ``index.json``: record names (the header's first word), offsets and lengths;
- ``uncalled.npy`` and ``soft.npy``: ``(2, runs)`` int64 ``[start, end)`` runs (cache
  coordinates) of bytes that are not A/C/G/T, and of lowercase a/c/g/t (soft-masked), so
  that the called bases of any window are counted without reading the window.

Windows are read with ``os.pread`` (``hlt_data.pread.OffsetFile``, read-ahead off)
rather than by slicing a memory map: a mapped page stays in the process's resident set
once touched (with the disk's read-ahead, a random 1 kbp window can map a megabyte), so
a long run over a mapped hg38 would grow towards 3 GB of resident memory; read bytes go
through the page cache, shared and reclaimable, and the process keeps only the window.
The run lists are memory-mapped while windows are counted, and not kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hlt_data.errors import DataConfigError
from hlt_data.pread import OffsetFile

BLOCK = 16 << 20  # bytes read per step of the build
VERSION = 1  # of the cache layout; a cache of another version is rebuilt
CACHE_SUFFIX = ".hlt-cache"
IUPAC = "RYSWKMBDHVU"  # ambiguity codes (and RNA's U): read as N unless data.iupac=error

# byte -> class: 0 not a base, 1 A/C/G/T, 2 a/c/g/t, 3 N/n, 4 another ambiguity code
INVALID, CALLED, SOFT, NBASE, AMBIGUOUS = range(5)
BYTE_CLASS = np.zeros(256, dtype=np.uint8)
for _chars, _class in (("ACGT", CALLED), ("acgt", SOFT), ("Nn", NBASE)):
    BYTE_CLASS[np.frombuffer(_chars.encode(), dtype=np.uint8)] = _class
BYTE_CLASS[np.frombuffer((IUPAC + IUPAC.lower()).encode(), dtype=np.uint8)] = AMBIGUOUS


def _runs(flags: np.ndarray, base: int) -> np.ndarray:
    """``(2, runs)`` starts and ends of the True runs of ``flags``, shifted by ``base``."""
    edges = np.diff(flags.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)]) + base


def _merge_runs(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenated runs, with runs that touch across block boundaries joined."""
    if not parts:
        return np.zeros((2, 0), dtype=np.int64)
    runs = np.concatenate(parts, axis=1).astype(np.int64)
    if runs.shape[1] < 2:
        return runs
    separate = runs[0, 1:] != runs[1, :-1]
    return np.stack([runs[0, np.r_[True, separate]], runs[1, np.r_[separate, True]]])


def covered(runs: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """How many bases of ``runs`` (sorted, disjoint) lie before each position."""
    if runs.shape[1] == 0:
        return np.zeros(len(positions), dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(runs[1] - runs[0])])  # run bases before run j
    j = np.maximum(np.searchsorted(runs[0], positions, side="right") - 1, 0)
    inside = np.clip(positions - runs[0, j], 0, runs[1, j] - runs[0, j])
    return before[j] + inside


class Progress:
    """A one-line progress report on stderr (rewritten in place on a terminal)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.shown = label, max(total, 1), -1
        self.tty = sys.stderr.isatty()

    def update(self, done: int) -> None:
        percent = min(100, done * 100 // self.total)
        if percent == self.shown or (not self.tty and percent % 10 and percent != 100):
            return
        self.shown = percent
        line = f"{self.label}: {percent}% of {self.total / 1e9:.2f} GB"
        sys.stderr.write(f"\r{line}" if self.tty else f"{line}\n")
        if self.tty and percent == 100:
            sys.stderr.write("\n")
        sys.stderr.flush()


class _Builder:
    """One streaming pass over a FASTA: bytes out, records and runs in memory."""

    def __init__(self, fasta: Path, out: Any) -> None:
        self.fasta, self.out = fasta, out
        self.records: list[dict[str, Any]] = []
        self.offset = 0
        self.uncalled: list[np.ndarray] = []
        self.soft: list[np.ndarray] = []
        self.first_ambiguous: dict[str, Any] | None = None

    def start_record(self, header: bytes) -> None:
        self.end_record()
        words = header.decode("utf-8", errors="replace").split()
        name = words[0] if words else f"record_{len(self.records) + 1}"
        self.records.append({"name": name, "offset": self.offset, "length": 0})

    def end_record(self) -> None:
        if self.records:
            self.records[-1]["length"] = self.offset - self.records[-1]["offset"]

    def bases(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self.records:
            raise DataConfigError(f"{self.fasta}: sequence before the first '>' header")
        classes = BYTE_CLASS[np.frombuffer(chunk, dtype=np.uint8)]
        record = self.records[-1]
        bad = np.flatnonzero(classes == INVALID)
        if len(bad):
            at = int(bad[0])
            raise DataConfigError(
                f"{self.fasta} record '{record['name']}' position "
                f"{self.offset - record['offset'] + at + 1}: {chr(chunk[at])!r} is not a "
                "nucleotide (A, C, G, T, N or an IUPAC code)"
            )
        ambiguous = np.flatnonzero(classes == AMBIGUOUS)
        if len(ambiguous) and self.first_ambiguous is None:
            at = int(ambiguous[0])
            position = self.offset - record["offset"] + at + 1
            self.first_ambiguous = {
                "record": record["name"],
                "position": position,
                "code": chr(chunk[at]),
            }
        self.uncalled.append(_runs(classes >= NBASE, self.offset))
        self.soft.append(_runs(classes == SOFT, self.offset))
        self.out.write(chunk)
        self.offset += len(chunk)


def _parse(fasta: Path, builder: _Builder, progress: Progress) -> None:
    header: bytes | None = None  # the header line being read, across blocks
    done = 0
    with open(fasta, "rb") as source:
        while block := source.read(BLOCK):
            done += len(block)
            pos = 0
            while pos < len(block):
                if header is not None:
                    newline = block.find(b"\n", pos)
                    if newline < 0:
                        header += block[pos:]
                        break
                    builder.start_record(header + block[pos:newline])
                    header, pos = None, newline + 1
                    continue
                mark = block.find(b">", pos)
                end = len(block) if mark < 0 else mark
                builder.bases(block[pos:end].translate(None, b"\r\n\t "))
                if mark < 0:
                    break
                header, pos = b"", mark + 1
            progress.update(done)
    if header is not None:
        builder.start_record(header)
    builder.end_record()


def cache_folder(fasta: Path, cache_dir: str | Path | None, kind: str = "genomes") -> Path:
    """Beside the file where its folder is writable, else under ``cache_dir`` (default
    ``~/.cache/hlt/<kind>``); table caches (``hlt_data.table_cache``) live the same way."""
    if cache_dir is None and os.access(fasta.parent, os.W_OK):
        return fasta.with_name(fasta.name + CACHE_SUFFIX)
    root = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "hlt" / kind
    digest = hashlib.sha1(str(fasta.resolve()).encode()).hexdigest()[:12]
    return root / f"{fasta.name}-{digest}{CACHE_SUFFIX}"


def source_stamp(path: Path) -> dict[str, int]:
    """What a cache remembers of its source file: a change of either rebuilds it."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _check_input(fasta: Path) -> None:
    if not fasta.is_file():
        raise DataConfigError(f"data.path={fasta}: no such file")
    with open(fasta, "rb") as handle:
        magic = handle.read(2)
    if magic == b"\x1f\x8b":
        raise DataConfigError(
            f"data.path={fasta}: compressed FASTA is not read; decompress it once "
            f"(gunzip -k {fasta}, or bgzip -d -k for bgzip) and point data.path at the result"
        )


def build_cache(fasta: Path, folder: Path) -> None:
    """Write the cache of ``fasta`` into ``folder`` (atomically: built aside, then renamed)."""
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        source = source_stamp(fasta)
        with open(tmp / "bases.u8", "wb") as out:
            builder = _Builder(fasta, out)
            _parse(fasta, builder, Progress(f"hlt: caching {fasta.name}", source["size"]))
        if not builder.records or builder.offset == 0:
            raise DataConfigError(f"data.path={fasta}: no sequences (expected FASTA records)")
        np.save(tmp / "uncalled.npy", _merge_runs(builder.uncalled), allow_pickle=False)
        np.save(tmp / "soft.npy", _merge_runs(builder.soft), allow_pickle=False)
        index = {
            "version": VERSION,
            "source": source,
            "records": builder.records,
            "first_ambiguous": builder.first_ambiguous,
        }
        (tmp / "index.json").write_text(json.dumps(index))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_index(folder: Path, fasta: Path) -> dict[str, Any] | None:
    """The cache's index if it is current for ``fasta``, else None."""
    try:
        index = json.loads((folder / "index.json").read_text())
    except (OSError, ValueError):
        return None
    if index.get("version") != VERSION or index.get("source") != source_stamp(fasta):
        return None
    return index


class GenomeCache:
    """Records and runs of a cached FASTA; windows of its bases read by ``read``."""

    def __init__(self, fasta: str | Path, cache_dir: str | Path | None = None) -> None:
        fasta = Path(fasta)
        _check_input(fasta)
        self.folder = cache_folder(fasta, cache_dir)
        index = _read_index(self.folder, fasta)
        if index is None:
            try:
                build_cache(fasta, self.folder)
            except OSError as error:
                raise DataConfigError(
                    f"data.path={fasta}: cannot write its cache in {self.folder.parent} "
                    f"({error.strerror}); set data.cache_dir to a writable folder"
                ) from None
            index = _read_index(self.folder, fasta)
            assert index is not None
        self.fasta = fasta
        self.names = [r["name"] for r in index["records"]]
        self.by_name = {name: i for i, name in enumerate(self.names)}
        self.offsets = np.array([r["offset"] for r in index["records"]], dtype=np.int64)
        self.lengths = np.array([r["length"] for r in index["records"]], dtype=np.int64)
        self.first_ambiguous: dict[str, Any] | None = index["first_ambiguous"]
        self.bases = OffsetFile(self.folder / "bases.u8", random=True)

    def runs(self, kind: str) -> np.ndarray:
        """The ``(2, runs)`` runs of ``kind`` (``uncalled`` or ``soft``), memory-mapped."""
        return np.load(self.folder / f"{kind}.npy", mmap_mode="r", allow_pickle=False)

    def count(self, kind: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Bases of ``kind`` (``uncalled`` or ``soft``) in each ``[start, end)``."""
        runs = self.runs(kind)
        return covered(runs, ends) - covered(runs, starts)

    def read(self, start: int, length: int) -> np.ndarray:
        """``length`` bytes of the cache from ``start``, read from the file (not mapped)."""
        return np.frombuffer(self.bases.read(start, length), dtype=np.uint8)
