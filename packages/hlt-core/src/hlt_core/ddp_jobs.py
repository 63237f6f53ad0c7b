"""DDP inside a multirun: a job's extra processes serve that job and nothing else.

Lightning starts DDP's other processes by running the command line again. In a
multirun that command line is the whole sweep, so each extra process would launch the
sweep anew (and a sweeper would ask for its trials again). Instead, a job of a multirun
names its folder in ``HLT_DDP_JOB``, which the processes it starts inherit, and a process
started that way runs that one job from the config the job saved in its folder.
When the job ends, its process group is destroyed and the variables Lightning set for it
(``LOCAL_RANK``, ``MASTER_PORT``...) are restored, so that the next job of the sweep in
this process launches its own processes instead of taking itself for a launched one.
Import-light: the app reads it before Hydra starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

JOB_VARIABLE = "HLT_DDP_JOB"
# what Lightning's subprocess launcher writes into the launching process's environment
LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def launch_environment() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in LAUNCH_VARIABLES}


def leave_job(environment: Mapping[str, str | None]) -> None:
    """Destroy this job's process group and restore ``environment`` (taken by
    ``launch_environment`` when the job started)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def announce_job(run_dir: str | Path, multirun: bool) -> None:
    """Name this job's folder for the DDP processes it may start (in a multirun whose
    job saved its config), and forget any earlier job's."""
    folder = Path(run_dir).resolve()
    if multirun and (folder / ".hydra" / "config.yaml").is_file():
        os.environ[JOB_VARIABLE] = str(folder)
    else:
        os.environ.pop(JOB_VARIABLE, None)


def ddp_job_argv(argv: Sequence[str], environ: Mapping[str, str]) -> list[str] | None:
    """The command line that runs alone the job a DDP process (local rank > 0) was
    started for, or None for any other process."""
    folder = environ.get(JOB_VARIABLE)
    rank = environ.get("LOCAL_RANK", "0")
    if not folder or rank == "0":
        return None
    return [
        argv[0],
        f"--config-path={Path(folder) / '.hydra'}",
        "--config-name=config",
        f"hydra.run.dir={folder}",
        "hydra.output_subdir=null",  # the job's own .hydra stays as the job wrote it
        f"hydra.job.name=ddp_process_{rank}",
    ]
