"""Sweeps shared by many workers (issue 23): three worker processes started with the same
command on one study run exactly ``n_trials`` between them; the one SIGKILLed mid-trial
has its trial failed by heartbeat and run again by a live worker in the same job folder.
On a shared SQLite file and on a real PostgreSQL server (Debian's ``postgresql``; the
fixture starts a throwaway cluster). The workers run ``sweep_app.py``, a torch-free app
driven by hlt's Optuna sweeper exactly as the trainer is."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hydra_plugins.hlt_optuna_sweeper.hlt_optuna_sweeper import JOB, job_folder

pytestmark = pytest.mark.cli
APP = Path(__file__).parent / "sweep_app.py"
WORKERS, TRIALS, KILLED_JOB = 3, 5, 1


def run_workers(sweep_dir: Path, storage: str) -> list[str]:
    """Start ``WORKERS`` workers with one command; job ``KILLED_JOB`` SIGKILLs the worker
    that runs it, once every worker is alive. Their outputs once all have ended."""
    env = {**os.environ, "SWEEP_APP_DIR": str(sweep_dir), "SWEEP_APP_KILL": str(KILLED_JOB)}
    env["SWEEP_APP_WORKERS"] = str(WORKERS)
    command = [
        sys.executable, str(APP), "-m", "epochs=3", f"hydra.sweeper.n_trials={TRIALS}",
        f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=shared",
    ]  # fmt: skip
    logs = [sweep_dir.parent / f"worker_{n}.log" for n in range(WORKERS)]
    workers = []
    for log in logs:
        with log.open("w") as out:
            workers.append(subprocess.Popen(command, env=env, stdout=out, stderr=out))
    try:
        for worker in workers:
            worker.wait(timeout=300)
    finally:
        for worker in workers:
            if worker.poll() is None:  # a hung worker fails the test, and ends with it
                worker.kill()
    outputs = [log.read_text() for log in logs]
    codes = sorted(worker.returncode for worker in workers)
    assert codes == [-signal.SIGKILL] + [0] * (WORKERS - 1), "\n".join(outputs)[-3000:]
    return outputs


def check_shared_sweep(sweep_dir: Path, storage: str) -> None:
    outputs = run_workers(sweep_dir, storage)
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == TRIALS  # in total, between the workers
    others = [t for t in trials if t.state != TrialState.COMPLETE]
    assert all(t.state == TrialState.FAIL for t in others)
    # the killed trial; any other is a surplus ask (two workers raced for the last trial),
    # failed before it recorded or ran a job
    failed_jobs = [t for t in others if JOB in t.user_attrs]
    assert len(failed_jobs) == 1, [
        (t.number, t.state.name, t.user_attrs.get(JOB), t.system_attrs) for t in trials
    ]
    (killed,) = failed_jobs
    assert job_folder(killed) == KILLED_JOB
    # failed by a live worker (by heartbeat: in its own check, or inside Optuna's ask,
    # which logs nothing) and its job run again
    assert "job again" in "".join(outputs)
    (rerun,) = [t for t in complete if t.system_attrs.get("failed_trial") == killed.number]
    assert job_folder(rerun) == KILLED_JOB  # its job again, in its folder
    folders = sorted(int(p.name) for p in sweep_dir.iterdir() if (p / ".hydra").is_dir())
    assert folders == sorted(job_folder(t) for t in complete)  # one folder per trial
    for folder in folders:  # each job ran to its end exactly once
        assert len((sweep_dir / str(folder) / "ends.log").read_text().splitlines()) == 1


def test_three_workers_share_a_sqlite_study(tmp_path):
    check_shared_sweep(tmp_path / "sweep", f"sqlite:///{tmp_path}/shared.db")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (as the ``postgres`` user when run as
    root, which PostgreSQL refuses to run as); its URL. Fails, never skips, without one."""
    found = shutil.which("initdb") or next(
        iter(glob.glob("/usr/lib/postgresql/*/bin/initdb")), None
    )
    if found is None:
        pytest.fail("PostgreSQL is not installed (no initdb): apt-get install postgresql")
    bindir = Path(found).resolve().parent
    home = Path(tempfile.mkdtemp(prefix="hlt-postgres-"))
    user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if user:
        shutil.chown(home, "postgres")
    data, port = home / "data", free_port()
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    steps = [
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(home / "log"),
            "-w",
            "start",
        ],
    ]
    try:
        for step in steps:
            done = subprocess.run([*user, *step], capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                pytest.fail(f"could not start PostgreSQL: {' '.join(step)}: {done.stderr[-1000:]}")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*user, *pg_ctl, "-m", "immediate", "stop"], capture_output=True, timeout=120
        )
        shutil.rmtree(home, ignore_errors=True)


def test_three_workers_share_a_study_on_postgresql(tmp_path, postgres):
    check_shared_sweep(tmp_path / "sweep", postgres)
