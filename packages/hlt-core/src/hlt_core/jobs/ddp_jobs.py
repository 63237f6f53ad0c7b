"""One run folder for every process of a distributed run, however it was launched.

Hydra picks a run folder when it composes the config (by default the start time names
it), so processes that each compose their own would each pick another. Every process
but rank 0 therefore learns rank 0's folder before Hydra starts (``rank_argv``):

- Lightning's own launcher runs the command line again with rank 0's ``hydra.run.dir``.
  In a multirun that command line is the whole sweep (each extra process would launch the
  sweep anew, and a sweeper ask for its trials again), so a job names its folder in
  ``HLT_DDP_JOB`` and a process started with it runs that one job from the config the job
  saved in its folder.
- torchrun starts every rank at once: rank 0 publishes its folder in the TCP store at
  ``MASTER_ADDR:MASTER_PORT`` (the store torch's process group uses) and the others
  wait for it there (``ShareRunFolder``, ``shared_run_folder``).
- srun starts every task at once too: all compose the same name, ``slurm-<job>.<step>``
  (``run_stamp``, the last part of ``hydra.run.dir``).

The other ranks write no ``.hydra/`` (rank 0's stays as it wrote it) and log to
``rank_<N>.log`` in that folder. When a job of a multirun ends, its process group is
destroyed and the variables Lightning set for it (``LOCAL_RANK``, ``MASTER_PORT``...) are
restored, so that the next job of the sweep in this process launches its own processes
instead of taking itself for a launched one.
Import-light: the app reads it before Hydra starts (torch only under torchrun).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

JOB_VARIABLE = "HLT_DDP_JOB"
NAME_VARIABLE = "HLT_DDP_JOB_NAME"  # the job's resolved `name` (its saved config may derive it)
# what Lightning's subprocess launcher writes into the launching process's environment
LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
STORE_WAIT = timedelta(minutes=10)  # how long torchrun's other ranks wait for rank 0's folder
_stores: list[Any] = []  # rank 0's store, kept open: its server lives as long as it does


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


def announce_job(run_dir: str | Path, multirun: bool, name: str) -> None:
    """Name this job's folder (and its ``name``) for the DDP processes it may start (in a
    multirun whose job saved its config), and forget any earlier job's."""
    folder = Path(run_dir).resolve()
    if multirun and (folder / ".hydra" / "config.yaml").is_file():
        os.environ[JOB_VARIABLE] = str(folder)
        os.environ[NAME_VARIABLE] = name
    else:
        os.environ.pop(JOB_VARIABLE, None)
        os.environ.pop(NAME_VARIABLE, None)


def process_rank(environ: Mapping[str, str]) -> str | None:
    """This process's rank in its run, or None for rank 0 (or a run of one process):
    torchrun's ``RANK``, srun's ``SLURM_PROCID``, else Lightning's ``LOCAL_RANK`` (with
    ``NODE_RANK`` on nodes after the first)."""
    if "RANK" in environ:
        rank = environ["RANK"]
    elif int(environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in environ:
        rank = environ["SLURM_PROCID"]
    else:
        local, node = environ.get("LOCAL_RANK", "0"), environ.get("NODE_RANK", "0")
        rank = local if node == "0" else f"{node}.{local}"
    return None if rank == "0" else rank


def under_torchrun(environ: Mapping[str, str]) -> bool:
    return "TORCHELASTIC_RUN_ID" in environ


def under_srun(environ: Mapping[str, str]) -> bool:
    """A job step that srun started as several tasks, each one process of the run."""
    return (
        int(environ.get("SLURM_NTASKS", "1")) > 1
        and "SLURM_STEP_ID" in environ
        and not under_torchrun(environ)
    )


def run_stamp() -> str:
    """``${hlt.run_stamp:}``, the last part of the default run folder: ``slurm-<job>.<step>``
    under srun (every task composes the same), else the start time to the microsecond."""
    if under_srun(os.environ):
        return f"slurm-{os.environ['SLURM_JOB_ID']}.{os.environ['SLURM_STEP_ID']}"
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def _store_key(environ: Mapping[str, str]) -> str:
    # a restarted torchrun group agrees anew: the agent's store outlives its workers
    return f"hlt/run_folder/{environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"


def _torchrun_store(environ: Mapping[str, str], first: bool) -> Any:
    """A client of torchrun's own store (its agent serves one at ``MASTER_ADDR:MASTER_PORT``),
    or, where the agent serves none, the server rank 0's process group will share."""
    from torch.distributed import TCPStore

    agent = environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    return TCPStore(
        environ["MASTER_ADDR"],
        int(environ["MASTER_PORT"]),
        is_master=first and not agent,
        timeout=STORE_WAIT,
        multi_tenant=True,
    )


def publish_run(folder: str | Path, args: Sequence[str], environ: Mapping[str, str]) -> None:
    """Rank 0 under torchrun: tell the other ranks the folder the run writes to and the
    overrides it was composed from (after ``hlt_core.jobs.resume`` rebuilt them)."""
    store = _torchrun_store(environ, first=True)
    _stores.append(store)
    run = {"folder": str(Path(folder).resolve()), "args": list(args)}
    store.set(_store_key(environ), json.dumps(run))


def shared_run(environ: Mapping[str, str]) -> dict[str, Any]:
    """The other ranks under torchrun: rank 0's run folder and overrides (waits until
    rank 0 has published them)."""
    run: dict[str, Any] = json.loads(_torchrun_store(environ, first=False).get(_store_key(environ)))
    return run


def _override(key: str, value: str) -> str:
    """``key=value`` with the value quoted for Hydra's override parser."""
    return f"{key}='{value}'" if "'" not in value else f'{key}="{value}"'


def rank_argv(argv: Sequence[str], environ: Mapping[str, str]) -> list[str] | None:
    """The command line that makes this process (not rank 0) join rank 0's run folder,
    or None for rank 0 and for a process of its own."""
    rank = process_rank(environ)
    if rank is None:
        return None
    own = ["hydra.output_subdir=null", f"hydra.job.name=rank_{rank}"]
    job = environ.get(JOB_VARIABLE)
    if job:
        return [
            argv[0],
            f"--config-path={Path(job) / '.hydra'}",
            "--config-name=config",
            _override("hydra.run.dir", job),
            _override("name", environ.get(NAME_VARIABLE, "")),
            *own,
        ]
    args = list(argv[1:])
    if under_torchrun(environ):  # rank 0's command line, as it composed it
        run = shared_run(environ)
        args = [*run["args"], _override("hydra.run.dir", run["folder"])]
    mine = [a for a in args if not a.startswith(("hydra.job.name=", "hydra.output_subdir="))]
    return [argv[0], *mine, *own]


class ShareRunFolder(Callback):
    """Hydra callback: under torchrun, rank 0 publishes its run folder once Hydra has
    chosen it, for the other ranks waiting in ``rank_argv``."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if under_torchrun(os.environ) and process_rank(os.environ) is None:
            HydraConfig.instance().set_config(config)  # the folder's name may read choices
            publish_run(config.hydra.run.dir, sys.argv[1:], os.environ)
