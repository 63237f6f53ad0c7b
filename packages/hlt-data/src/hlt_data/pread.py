"""A cache file read by offset (``os.pread``) rather than through a memory map.

A mapped page stays in the process's resident set once touched, so a long run over a
large mapped cache grows towards the cache's size; bytes read by offset go through the
page cache (shared, reclaimable) and the process keeps only what it asked for. Genome
windows (``hlt_data.genome_cache``) and cached table rows (``hlt_data.table_cache``)
are read this way.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from hlt_data.errors import DataConfigError


class OffsetFile:
    """One file, opened once per process and read by offset. A pickled copy (a spawned
    loader worker's) opens its own; ``random`` turns the disk's read-ahead off."""

    def __init__(self, path: Path, random: bool = False) -> None:
        self.path = path
        self.random = random
        self._fd: int | None = None

    def fd(self) -> int:
        """The open file (opened now if need be; closed with this object)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
            weakref.finalize(self, os.close, self._fd)
            if self.random and hasattr(os, "posix_fadvise"):  # Linux
                os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)
        return self._fd

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes from ``offset``; a shorter file is a damaged cache, named."""
        data = os.pread(self.fd(), size, offset)
        if len(data) != size:
            raise DataConfigError(
                f"{self.path}: {len(data)} bytes at {offset}, expected {size} "
                f"(a damaged cache: delete {self.path.parent} to rebuild it)"
            )
        return data

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fd": None}
