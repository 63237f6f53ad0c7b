"""The Hydra entry point. Config-only commands (--help, --cfg, --info) import no torch."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from hlt_core.composing.data_facts import FROM_DATA, unstated_dims
from hlt_core.errors import USER_ERROR, UserError, exit_user_error
from hlt_core.hydra_compat import HYDRA_MAIN, VERSION_BASE, share_config_store
from hlt_core.jobs.ddp_jobs import process_rank, rank_argv, under_srun, under_torchrun
from hlt_core.jobs.resume import resume_argv
from hlt_core.jobs.sweep_resume import finished_run
from hlt_core.jobs.sweeps import check_search_mode
from hlt_core.schemas import register_schemas
from hlt_trainer.paths import config_dir

register_schemas()
share_config_store()  # each of Hydra 1.3's config lookups copies less
_started = False  # whether a job reached the task function


@hydra.main(config_path=config_dir(), config_name="train", **HYDRA_MAIN)
def _main(cfg: DictConfig) -> Any:
    global _started
    _started = True
    check_search_mode()
    done = finished_run(cfg)  # a job of a resumed sweep that already ended ok
    from hlt_core.run import objective, run_or_exit  # torch and Lightning: only for real work

    return objective(cfg, done) if done is not None else run_or_exit(cfg)


def launch_argv(argv: list[str], environ: Mapping[str, str]) -> list[str]:
    """The command line this process runs. Ranks other than 0 take rank 0's, which has
    already resolved ``resume=`` (torchrun's from its store, Lightning's DDP processes as
    their arguments); srun's tasks each resolve it. A sweep is one process's work: its
    jobs start their own DDP processes, so torchrun and srun cannot start it."""
    if (under_torchrun(environ) or under_srun(environ)) and ({"-m", "--multirun"} & set(argv)):
        raise UserError(
            "a sweep (-m) cannot be started by torchrun or srun; start it once, with "
            "trainer=ddp for DDP jobs or hydra/launcher=slurm for SLURM"
        )
    if process_rank(environ) is None or under_srun(environ):
        argv = resume_argv(argv) or argv
    return rank_argv(argv, environ) or argv


def from_data_argv(argv: list[str]) -> list[str]:
    """``--cfg job|all --resolve`` composes the config before any data is built, so what
    the data fills (``${data.dims.*}``) is not known yet: those keys are given as
    ``<from data>`` (``hlt_core.composing.data_facts.FROM_DATA``) so that Hydra prints the rest
    resolved. A config that does not compose is left for Hydra to report."""
    args, _ = get_args_parser().parse_known_args(argv[1:])
    if args.cfg not in ("job", "all") or not args.resolve:
        return argv
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE):
            cfg = compose(args.config_name or "train", overrides=args.overrides)
    except Exception:  # the same error comes again, as Hydra reports it
        return argv
    finally:
        GlobalHydra.instance().clear()
    return [*argv, *(f"++data.dims.{key}='{FROM_DATA}'" for key in unstated_dims(cfg))]


def main() -> Any:
    """Hydra's app, with its config errors (an unknown key or option, a bad value: Hydra
    exits 1 before any job starts) given the app's user-error status. ``resume=`` is
    turned into the resumed run's own command line (``hlt_core.jobs.resume``), and a process
    other than rank 0 of a distributed run joins rank 0's run (``hlt_core.jobs.ddp_jobs``)."""
    try:
        sys.argv = from_data_argv(launch_argv(sys.argv, os.environ))
    except UserError as error:
        exit_user_error(error)
    try:
        return _main()
    except SystemExit as stop:
        if stop.code == 1 and not _started:
            raise SystemExit(USER_ERROR) from None
        raise
