"""Files a kill cannot half-write: checkpoints, results, exports.

Each file is written to a temporary file in its own folder, flushed and fsynced, then
renamed over the old one with ``os.replace``: a rename within one filesystem is atomic,
so a reader (or a resumed run) sees the old file or the new one, never a mix. Lightning's
own save writes into ``$TMPDIR`` and moves the file, which becomes a copy that first
empties the old file when ``$TMPDIR`` is on another filesystem (tmpfs ``/tmp``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

import torch
from lightning.pytorch.plugins.io import CheckpointIO, TorchCheckpointIO

from hlt_core.hydra_compat import instantiate

PARTIAL = ".partial"  # the suffix of temporary files; any left in a run folder are stale


@contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file object whose contents replace ``path`` only once fully on disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{PARTIAL}")
    try:
        with open(temp, "xb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except OSError as error:  # a full disk names the file it was writing
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from error
    finally:
        temp.unlink(missing_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # makes the rename itself survive a power cut
    finally:
        os.close(folder)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_file(path) as file:
        file.write(text.encode())


def remove_partial_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files a killed run left anywhere under ``folder``.

    Only safe while no other process writes into ``folder``: the run folder lock
    (``hlt_core.jobs.runlock``) makes sure of that for runs of the trainer app.
    """
    stale = sorted(Path(folder).rglob(f".*{PARTIAL}"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that saves through ``atomic_file`` (see the module doc)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_file(path) as file:
            writes = _KeptErrors(file)
            try:
                torch.save(checkpoint, cast(IO[bytes], writes))  # a file to torch.save
            except RuntimeError:
                if writes.error is None:
                    raise
                raise writes.error from None


class _KeptErrors:
    """The file ``torch.save`` writes through, keeping the ``OSError`` of a failed write:
    torch's writer turns it into ``RuntimeError: ... unexpected pos``, which says nothing
    of a full disk."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.file.flush()


def trainer_plugins(node: Any) -> list[Any]:
    """The Trainer's ``plugins`` config (none, one or a list) built, plus
    ``AtomicCheckpointIO`` unless they bring their own CheckpointIO."""
    if node is None:
        plugins = []
    elif isinstance(node, str):  # a name Lightning knows, e.g. a precision
        plugins = [node]
    else:
        built = instantiate(node, _convert_="all")
        plugins = built if isinstance(built, list) else [built]
    if any(isinstance(plugin, CheckpointIO) for plugin in plugins):
        return plugins
    return [*plugins, AtomicCheckpointIO()]
