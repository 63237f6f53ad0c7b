"""Checkpoints, results and exports are whole or absent, whatever kills the writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hlt_core.storing.atomic import (
    AtomicCheckpointIO,
    atomic_file,
    remove_partial_files,
    trainer_plugins,
)

SHM = Path("/dev/shm")
KILLS = 8


@pytest.mark.skipif(not SHM.is_dir(), reason="needs /dev/shm, a filesystem apart from tmp")
def test_last_ckpt_survives_sigkill_mid_save_with_tmpdir_on_another_filesystem(tmp_path):
    assert os.stat(SHM).st_dev != os.stat(tmp_path).st_dev
    script = Path(__file__).with_name("kill_saves.py")
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(KILLS)],
        env={**os.environ, "TMPDIR": str(SHM)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["loadable"] == KILLS  # every kill left a complete last.ckpt
    assert result["partial"] > 0  # and some kills did land mid-save
    assert len(remove_partial_files(tmp_path)) == result["partial"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(path) as file:
        file.write(b"half of the new")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_checkpoint_io_writes_into_the_target_folder_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "elsewhere"))
    AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "ckpts" / "last.ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["ckpts"]
    assert AtomicCheckpointIO().load_checkpoint(tmp_path / "ckpts" / "last.ckpt") == {"step": 1}


@pytest.mark.parametrize(
    ("node", "kinds"),
    [
        (None, ["AtomicCheckpointIO"]),
        ("bf16-mixed", ["str", "AtomicCheckpointIO"]),
        ({"_target_": "lightning.pytorch.plugins.environments.SLURMEnvironment"},
         ["SLURMEnvironment", "AtomicCheckpointIO"]),
        ([{"_target_": "lightning.pytorch.plugins.io.TorchCheckpointIO"}], ["TorchCheckpointIO"]),
    ],
)  # fmt: skip
def test_trainer_plugins_get_atomic_checkpoints_unless_they_bring_their_own(node, kinds):
    assert [type(plugin).__name__ for plugin in trainer_plugins(node)] == kinds
