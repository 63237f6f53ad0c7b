"""Hydra's Optuna sweeper made resumable: re-running the command into the same sweep folder
continues the stored study to ``n_trials`` in total, not ``n_trials`` more.

A wrapper around hydra-optuna-sweeper's own ``OptunaSweeper`` (1.3 and 1.4 alike), not a
copy of it: before the stock sweep starts, each trial that a killed sweep left running is
run again in its own job folder and told; the stock loop then asks only for the trials
still missing, numbered on from the study's last trial, so that job ``n`` is trial ``n``
and no job folder is written twice. Optuna is imported only when the sweeper is used:
Hydra imports every plugin module, with or without the trainer's ``optuna`` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hlt_core.console import route_optuna_logging

if TYPE_CHECKING:
    from optuna.study import Study
    from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)


def trial_overrides(trial: FrozenTrial) -> list[str]:
    """The job overrides the stock sweeper built for ``trial``: its sampled parameters,
    then the fixed ones, which it keeps as the trial's user attributes."""
    return [f"{name}={value}" for name, value in {**trial.params, **trial.user_attrs}.items()]


def stored_study(storage: Any, study_name: str | None) -> Study | None:
    """The study already in ``storage``, or None (no storage, or nothing stored yet)."""
    import optuna

    if storage is None:
        return None
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # Optuna's "no such study"
        return None


class ResumableOptunaSweeper(Sweeper):
    """``OptunaSweeper`` with the same settings, resuming the study found in ``storage``."""

    def __init__(self, **settings: Any) -> None:
        from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

        self.stock = OptunaSweeper(**settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.stock.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        # a storage inside the sweep folder (the default) needs the folder before the study
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)

    def sweep(self, arguments: list[str]) -> None:
        from optuna.samplers import BaseSampler

        route_optuna_logging()
        impl = self.stock.sweeper  # the stock loop's state: n_trials, job_idx, launcher
        study = stored_study(impl.storage, impl.study_name)
        if study is not None:
            if isinstance(impl.sampler, BaseSampler):  # 1.3 builds a grid sampler later
                # from its seed, the sampler would draw the stopped run's random trials again
                impl.sampler.reseed_rng()
            self.rerun_interrupted(study)
            done = len(study.trials)
            impl.n_trials = max(impl.n_trials - done, 0)
            impl.job_idx = done
            log.info(f"Study {study.study_name} resumed: {done} done, {impl.n_trials} to run")
        self.stock.sweep(arguments)

    def rerun_interrupted(self, study: Study) -> None:
        """Run each trial left running by a killed sweep again, in its own job folder (a
        job that had ended ok is skipped there and returns its recorded value), and tell
        the study its outcome as the stock loop would: its value, or failed."""
        from optuna.trial import TrialState

        launcher = self.stock.sweeper.launcher
        assert launcher is not None, "setup() comes first"
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            log.info(f"Trial {trial.number} was left running by a stopped sweep: running it again")
            (job,) = launcher.launch([trial_overrides(trial)], initial_job_idx=trial.number)
            try:
                value = job.return_value  # raises the job's own error, if it raised
                values = list(value) if isinstance(value, Sequence) else [value]
                study.tell(trial.number, [float(v) for v in values])
            except Exception as error:
                log.warning(f"Failed experiment: {error}")
                study.tell(trial.number, state=TrialState.FAIL)
