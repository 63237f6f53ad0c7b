"""One run per folder: the lock a run holds on its folder, and the Hydra callback that
refuses a second run in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from hlt_core.jobs.runlock import RunFolderLock, lock_run_folder, unlock_run_folder


def test_a_folder_is_locked_by_one_process_at_a_time(tmp_path):
    script = (
        f"from hlt_core.jobs.runlock import lock_run_folder; lock_run_folder({str(tmp_path)!r})"
    )
    lock_run_folder(tmp_path)
    try:
        lock_run_folder(tmp_path)  # the holder may ask again
        other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert f"run folder {tmp_path} is in use by another run (pid {os.getpid()})" in (
            other.stderr
        )
    finally:
        unlock_run_folder(tmp_path)
    assert not (tmp_path / ".hlt.lock").exists()  # released and removed
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_second_run_into_a_held_folder_is_refused_in_one_line(tmp_path, capsys):
    config = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(tmp_path)}}})
    script = (
        f"from hlt_core.jobs.runlock import lock_run_folder; lock_run_folder({str(tmp_path)!r})"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", f"{script}; print('locked', flush=True); input()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(SystemExit) as stop:
            RunFolderLock().on_job_start(config)
        assert stop.value.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"error: run folder {tmp_path} is in use by another run")
    finally:
        holder.communicate("")
