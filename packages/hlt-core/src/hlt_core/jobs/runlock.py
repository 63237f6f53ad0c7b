"""One run per folder: a run holds an exclusive lock on its run folder while it lives.

Two runs writing into one folder overwrite each other's config, checkpoints and logs
(and both die at the end on the CSV log). The lock is an ``flock`` on ``.hlt.lock`` in
the folder, which holds the owner's pid; the kernel releases it when the owner exits,
however it exits, so a killed run leaves no stale lock (its file stays, harmless); a run
that ends removes the file. Taken by a Hydra callback before
Hydra writes anything into the folder, so a refused run leaves the folder as it was.
Import-light: Hydra builds its callbacks for config-only commands too.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from hlt_core.errors import UserError, exit_user_error
from hlt_core.jobs.ddp_jobs import process_rank

LOCK_FILE = ".hlt.lock"
_held: dict[Path, int] = {}  # folder -> descriptor of its lock file, for this process


class FolderInUseError(UserError):
    """Another live run holds the run folder."""


def lock_run_folder(folder: str | Path) -> None:
    """Lock ``folder`` (created if missing) for this process; no-op if it already has it."""
    folder = Path(folder).resolve()
    if folder in _held:
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise FolderInUseError(
            f"run folder {folder} is in use by another run (pid {owner}); "
            "choose another hydra.run.dir or wait for it to end"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[folder] = fd


def unlock_run_folder(folder: str | Path) -> None:
    """Release ``folder`` and remove its lock file (removed while still held, so that no
    other run can be holding it)."""
    folder = Path(folder).resolve()
    fd = _held.pop(folder, None)
    if fd is not None:
        (folder / LOCK_FILE).unlink(missing_ok=True)
        os.close(fd)


def first_process() -> bool:
    """False in the other processes of a distributed run: they share rank 0's folder."""
    return process_rank(os.environ) is None


class RunFolderLock(Callback):
    """Hydra callback: ``lock_run_folder`` for a run (before Hydra writes into its folder)
    and for each job of a multirun; a refused run prints one line and exits with 2."""

    def _lock(self, folder: str) -> None:
        if not first_process():
            return
        try:
            lock_run_folder(folder)
        except FolderInUseError as error:
            exit_user_error(error)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # the folder's name may read choices
        self._lock(config.hydra.run.dir)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        unlock_run_folder(config.hydra.run.dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._lock(config.hydra.runtime.output_dir)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        unlock_run_folder(config.hydra.runtime.output_dir)
