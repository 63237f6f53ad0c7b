"""Nothing lost, nothing run that should not be: atomic writes, strict results.json and
one run per folder (issue 16)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from helpers import CONFIG_DIR, QUICK, REPO, compose_run
from hlt_core.hydra_compat import VERSION_BASE
from hlt_core.jobs.runlock import lock_run_folder, unlock_run_folder
from hlt_core.results.records import results_json, write_results
from hlt_core.run import run, run_or_exit
from hlt_core.storing import atomic


def strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_run_saves_checkpoints_atomically_and_clears_a_killed_runs_temporaries(
    run_dir, monkeypatch
):
    stale = run_dir / "checkpoints" / ".last.ckpt.4242-0badc0de.partial"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a checkpoint")
    written: list[str] = []

    def recording(path):
        written.append(Path(path).name)
        return real(path)

    real = atomic.atomic_file
    monkeypatch.setattr(atomic, "atomic_file", recording)
    run(compose_run([*QUICK, "test=false"], run_dir))
    assert not stale.exists()
    assert "last.ckpt" in written and any(name.startswith("best-") for name in written)
    assert "results.json" in written
    assert not list(run_dir.rglob("*.partial"))


def test_results_json_is_strict_json_and_names_the_non_finite_values(tmp_path):
    write_results(tmp_path, {"val/loss": math.nan, "test/loss": -math.inf, "test/acc": 0.5})
    results = strict_json((tmp_path / "results.json").read_text())
    assert results["val/loss"] is None and results["test/loss"] is None
    assert results["test/acc"] == 0.5
    assert results["nonfinite"] == {"val/loss": "nan", "test/loss": "-inf"}
    assert "nonfinite" not in strict_json(results_json({"val/loss": 1.0}))


@pytest.mark.cli
def test_a_second_run_into_a_folder_in_use_is_refused_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    lock_run_folder(run_dir)  # as a live run would hold it
    try:
        before = sorted(p.name for p in run_dir.iterdir())
        done = subprocess.run(
            [sys.executable, str(REPO / "apps" / "trainer"), f"hydra.run.dir={run_dir}"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        after = sorted(p.name for p in run_dir.iterdir())
    finally:
        unlock_run_folder(run_dir)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: run folder {run_dir} is in use by another run (pid {os.getpid()}); "
        "choose another hydra.run.dir or wait for it to end"
    )
    assert after == before == [".hlt.lock"]


def default_run_dir() -> str:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        cfg = compose("train", return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # the folder's name reads the chosen groups
    return str(cfg.hydra.run.dir)


def test_default_run_folders_of_runs_started_in_the_same_second_differ():
    first, second = default_run_dir(), default_run_dir()
    assert first != second
    stamp = r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d{6}"
    assert re.fullmatch(rf"outputs/clusters_mlp_classification/runs/{stamp}", first), first
    GlobalHydra.instance().clear()


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real 30 MB filesystem (tmpfs), nearly filled: mounting needs root."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(disk)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        free = shutil.disk_usage(disk).free
        (disk / "filler").write_bytes(bytes(free - 96 * 1024))  # less than one checkpoint
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing_half_written(
    small_disk, capsys
):
    run_dir = small_disk / "run"
    cfg = compose_run([*QUICK, "logger=none"], run_dir)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        run_or_exit(cfg)
    assert stop.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1, errors
    assert re.match(rf"error: disk full writing {run_dir / 'checkpoints'}/\S+\.ckpt: ", errors[0])
    record = json.loads((run_dir / "results.json").read_text())
    assert record["status"] == "failed" and record["error"].startswith("disk full writing")
    assert not list(run_dir.rglob(f"*{atomic.PARTIAL}"))  # no half-written checkpoint
    assert not list(run_dir.rglob("*.ckpt"))
