"""Data getters: callables that return the list of files a datamodule reads.

Configure one with ``_target_`` under ``data.files`` (or one per split). A getter only
lists paths; it never reads them. Both fail, naming what they looked for, when they
find nothing, so a wrong root is reported before training starts.
"""

from __future__ import annotations

from pathlib import Path

from hlt_data.errors import DataConfigError


class GlobFiles:
    """Files under ``root`` matching ``pattern`` (``**`` recurses), sorted by path."""

    def __init__(self, root: str | Path, pattern: str = "*") -> None:
        self.root = Path(root)
        self.pattern = pattern

    def __call__(self) -> list[Path]:
        if not self.root.is_dir():
            raise DataConfigError(f"data root '{self.root}' is not a folder")
        files = sorted(p for p in self.root.glob(self.pattern) if p.is_file())
        if not files:
            raise DataConfigError(
                f"no files match pattern '{self.pattern}' under root '{self.root}'"
            )
        return files


class ManifestFiles:
    """Files listed in a text manifest, one path a line, relative to the manifest's folder.

    Blank lines and lines starting with ``#`` are skipped. Every listed file must exist.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __call__(self) -> list[Path]:
        try:
            lines = self.path.read_text().splitlines()
        except OSError as error:
            raise DataConfigError(
                f"manifest '{self.path}' cannot be read: {error.strerror}"
            ) from None
        files = []
        for number, line in enumerate(lines, start=1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            file = self.path.parent / entry
            if not file.is_file():
                raise DataConfigError(
                    f"manifest '{self.path}' line {number}: no such file '{file}'"
                )
            files.append(file)
        if not files:
            raise DataConfigError(f"manifest '{self.path}' lists no files")
        return files


class PathFiles:
    """``path`` itself if it is a file, else the files under the folder ``path`` (at any
    depth, sorted) whose names end with one of ``suffixes``: what ``data.path`` means."""

    def __init__(self, path: str | Path, suffixes: tuple[str, ...] | list[str]) -> None:
        self.path = Path(path)
        self.suffixes = tuple(s.lower() for s in suffixes)

    def __call__(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise DataConfigError(f"data.path={self.path}: no such file or folder")
        files = sorted(
            p
            for p in self.path.rglob("*")
            if p.is_file() and p.name.lower().endswith(self.suffixes)
        )
        if not files:
            raise DataConfigError(
                f"data.path={self.path}: the folder has no {' / '.join(self.suffixes)} files"
            )
        return files
