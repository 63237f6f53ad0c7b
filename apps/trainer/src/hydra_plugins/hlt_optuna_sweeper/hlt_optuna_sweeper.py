"""hlt's Optuna sweeper: a search that resumes, survives failed trials and is shared by
many workers through one Optuna storage (a database URL).

Each trial's whole job (its sampled values and every fixed override of the command) is
recorded in the study as one user attribute, ``hlt.job``, before the job starts; job
folder ``n`` belongs to trial ``n``. A stored job is data, never a command: what a trial
replays is rebuilt from this command's own overrides and the trial's values, checked
against this search space, and must equal the recorded job (``hlt_core.jobs.sweep_resume``).
Trials are counted against ``n_trials`` in the shared study, not per worker. A worker
that dies mid-trial stops its heartbeat; a live worker fails that trial and runs it again
as a new trial (Optuna's ``RetryHeartbeatStaleTrialCallback``) in the same job folder.

Optuna is imported only when the sweeper is used: Hydra imports every plugin module,
with or without the trainer's ``optuna`` extra.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, Transformer
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hlt_core.errors import exit_user_error
from hlt_core.jobs.sweep_resume import check_stored_job
from hlt_core.results.console import route_library_logging
from hydra_plugins.hlt_optuna_sweeper.config import HltOptunaSweeperConf

if TYPE_CHECKING:
    from hydra.core.utils import JobReturn
    from hydra.plugins.launcher import Launcher
    from optuna.distributions import BaseDistribution
    from optuna.storages import RDBStorage
    from optuna.study import Study
    from optuna.trial import FrozenTrial, Trial

log = logging.getLogger(__name__)
JOB = "hlt.job"  # user attribute: {"overrides": [...], "worker": "host:pid"}
FAILED_JOB = "hlt.failed"  # user attribute of a trial whose job failed (it counts as run)
ConfigStore.instance().store(
    group="hydra/sweeper", name="hlt_optuna", node=HltOptunaSweeperConf, provider="hlt"
)


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one Hydra sweep override (``interval``, ``choice``,
    ``range``; ``tag(log, interval(...))`` samples on a log scale)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    value = override.value()
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        low, high, log_scale = value.start, value.end, "log" in value.tags
        if isinstance(low, int) and isinstance(high, int):
            return IntDistribution(low, high, log=log_scale)
        return FloatDistribution(float(low), float(high), log=log_scale)  # type: ignore[arg-type]
    choices = list(override.sweep_iterator(transformer=Transformer.encode))
    return CategoricalDistribution(choices)  # type: ignore[arg-type]  # Hydra's values


def search_space(
    params: dict[str, str] | None, arguments: Sequence[str]
) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The swept keys with their distributions, and the fixed overrides: the sweeper's
    ``params`` then the command's own overrides (a command override wins over ``params``)."""
    given = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    by_key: dict[str, Override] = {}
    for override in OverridesParser.create().parse_overrides(given):
        by_key[override.get_key_element()] = override
    space = {k: distribution(o) for k, o in by_key.items() if o.is_sweep_override()}
    fixed = [o.input_line or "" for o in by_key.values() if not o.is_sweep_override()]
    return space, fixed


def job_overrides(params: dict[str, Any], fixed: Sequence[str]) -> list[str]:
    """A trial's whole job: its sampled values, then the command's fixed overrides."""
    return [f"{key}={value}" for key, value in params.items()] + list(fixed)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def dead_here(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was run by a process of this machine that is gone (a sweep killed
    here): no need to wait for its heartbeat to go stale. A reused pid falls back on it."""
    worker = str(dict(trial.user_attrs.get(JOB) or {}).get("worker", ""))
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def job_folder(trial: FrozenTrial) -> int:
    """The job folder (``hydra.job.num``) of ``trial``: a retried trial's original one."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental" since 2.8
        original = Retry.retried_trial_number(trial)
    return trial.number if original is None else int(original)


def slots_held(trials: Sequence[FrozenTrial]) -> int:
    """How many of ``trials`` count against ``n_trials``: complete ones, those still to
    run (running, waiting), and those failed by their own job; not those whose worker
    died (a retry, queued or running, holds their place) nor surplus asks."""
    from optuna.trial import TrialState

    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return sum(
        t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
        or (t.state == TrialState.FAIL and FAILED_JOB in t.user_attrs and t.number not in retried)
        for t in trials
    )


def requeue(study: Study, trial_id: int, max_retry: int | None) -> None:
    """Fail a running trial that will not end, and queue its job again (as Optuna does
    for a trial whose heartbeat stopped) when it has one; a no-op once it has ended."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    storage = study._storage
    try:
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # told, or another worker failed it first
    trial = storage.get_trial(trial_id)
    if JOB in trial.user_attrs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" since 2.8
            RetryHeartbeatStaleTrialCallback(max_retry)(study, trial)


def shown_url(url: str) -> str:
    """A storage URL fit for a log line: its password masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def heartbeat(storage: RDBStorage, trial_id: int, interval: int) -> Iterator[None]:
    """Record the trial's heartbeat now and every ``interval`` seconds while it runs."""
    storage.record_heartbeat(trial_id)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def serialized(storage: RDBStorage) -> RDBStorage:
    """On SQLite, every transaction takes the write lock when it begins (BEGIN IMMEDIATE).

    Optuna claims a waiting trial by reading it FOR UPDATE and then setting it RUNNING;
    SQLite ignores FOR UPDATE and pysqlite begins a transaction only at the write, so two
    workers could both claim one retried trial and run its job twice. A server database
    locks the row itself and is left as it is."""
    from sqlalchemy import event

    engine = storage.engine
    if engine.dialect.name != "sqlite":
        return storage

    @event.listens_for(engine, "connect")
    def no_implicit_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners reconnect with them
    return storage


class ResumableOptunaSweeper(Sweeper):
    """Ask, record, run and tell one trial at a time until the study holds ``n_trials``."""

    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        params: dict[str, str] | None,
        heartbeat_interval: int,
        grace_period: int,
        max_retry: int | None,
    ) -> None:
        # Hydra 1.3 builds the sampler from its `_target_`; 1.4 hands the config over
        self.sampler = instantiate(sampler) if isinstance(sampler, DictConfig) else sampler
        self.directions = [direction] if isinstance(direction, str) else list(direction)
        self.storage_url = storage
        self.study_name = study_name
        self.n_trials = n_trials
        self.params = params
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.max_retry = max_retry
        self.rdb: RDBStorage | None = None  # the study's storage, when in a database
        self.launcher: Launcher | None = None
        self.config: DictConfig | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        # a storage inside the sweep folder (the default) needs the folder before the study
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)

    def storage(self) -> RDBStorage | None:
        from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
        from sqlalchemy.exc import SQLAlchemyError

        if self.storage_url is None:
            return None
        engine: dict[str, Any] = {}
        if self.storage_url.startswith("sqlite"):  # several workers may wait on one file
            engine = {"connect_args": {"timeout": 60}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" since 2.8
            retry = RetryHeartbeatStaleTrialCallback(self.max_retry)

        def connect() -> RDBStorage:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # heartbeats: "experimental" since 2.9
                return RDBStorage(
                    self.storage_url or "",
                    engine_kwargs=engine,
                    heartbeat_interval=self.heartbeat_interval,
                    grace_period=self.grace_period,
                    heartbeat_stale_trial_callback=retry,
                )

        for wait in (1, 2, 3):
            try:
                return serialized(connect())
            except SQLAlchemyError:  # workers started together race to create the tables
                time.sleep(wait)
        return serialized(connect())

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        route_library_logging("optuna")  # its import installed a stderr handler
        assert self.config is not None and self.launcher is not None, "setup() comes first"
        space, fixed = search_space(self.params, arguments)
        if self.study_name is None:  # the run name, which may read Hydra's choices
            HydraConfig.instance().set_config(self.config)
            self.study_name = str(self.config.get("name") or "hlt")
        self.rdb = storage = self.storage()
        existed = storage is not None and self.study_name in optuna.get_all_study_names(storage)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=self.sampler,
            directions=self.directions,
            load_if_exists=True,
        )
        where = f"study {study.study_name} in {shown_url(self.storage_url or 'memory')}"
        if existed:
            # from its seed, the sampler would draw the stopped run's random trials again
            self.sampler.reseed_rng()
            self.check_stored_jobs(study, space, fixed, where)
            held = slots_held(study.get_trials(deepcopy=False))
            log.info(f"{where} resumed: {held} of its {self.n_trials} trials run or running")
        while (trial := self.next_trial(study, space)) is not None:
            self.run_trial(study, trial, space, fixed, where)
        self.save_best(study)

    def check_stored_jobs(
        self, study: Study, space: dict[str, BaseDistribution], fixed: list[str], where: str
    ) -> None:
        """Refuse (exit 2, one line) a study whose trials would replay a job this command
        does not plan: a trial left to run (running or waiting) must hold a valid job, and
        every recorded job must be of this command's recipe (same fixed overrides)."""
        from optuna.trial import TrialState

        for trial in study.get_trials(deepcopy=False):
            pending = trial.state in (TrialState.RUNNING, TrialState.WAITING)
            if pending or JOB in trial.user_attrs:
                self.planned_job(trial, space, fixed, where)

    def planned_job(
        self, trial: FrozenTrial, space: dict[str, BaseDistribution], fixed: list[str], where: str
    ) -> list[str]:
        """The job ``trial`` runs, rebuilt from this command and the trial's values (each
        checked against this search space); equal to the job recorded in the study, if any.
        Nothing stored is replayed as it is."""
        name = f"{where}: trial {trial.number}"
        foreign = sorted(set(trial.user_attrs) - {JOB, FAILED_JOB})
        if foreign:
            exit_user_error(
                f"{name}: holds attributes hlt never writes ({', '.join(foreign)[:200]})"
            )
        for key, value in trial.params.items():
            dist = space.get(key)
            if dist is None or trial.distributions[key] != dist:
                exit_user_error(f"{name}: has {key}={value!r:.100}, outside this search space")
            if not dist._contains(dist.to_internal_repr(value)):
                exit_user_error(f"{name}: has {key}={value!r:.100}, outside this search space")
        job = job_overrides(trial.params, fixed)
        if JOB in trial.user_attrs:
            stored = trial.user_attrs[JOB]
            recorded = stored.get("overrides") if isinstance(stored, dict) else stored
            check_stored_job(recorded, job, name)
        return job

    def reclaim(self, study: Study, starting: bool) -> None:
        """Fail the trials of dead workers and queue each one's job again: those whose
        heartbeat stopped (Optuna's heartbeat), those of dead processes of this machine (on
        starting: a sweep killed here is resumed at once), and those a worker died in
        before it recorded their job (after ``grace_period``; nothing to queue again)."""
        from optuna.storages import fail_stale_trials
        from optuna.trial import TrialState

        running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" since 2.9
            fail_stale_trials(study)
        too_old = datetime.now() - timedelta(seconds=self.grace_period)
        for trial in study.get_trials(deepcopy=False):
            if trial.state == TrialState.FAIL and trial.number in running:
                log.info(f"Trial {trial.number} lost its worker (no heartbeat): queued again")
            if trial.state != TrialState.RUNNING:
                continue
            unrecorded = JOB not in trial.user_attrs and (trial.datetime_start or too_old) < too_old
            if (starting and dead_here(trial)) or unrecorded:
                log.info(f"Trial {trial.number} was left running by a stopped worker")
                requeue(study, trial._trial_id, self.max_retry)

    def next_trial(self, study: Study, space: dict[str, BaseDistribution]) -> Trial | None:
        """The next trial this worker runs (a queued retry first), or None when the study
        holds ``n_trials``; waits while other workers' trials may still need a retry."""
        from optuna.trial import TrialState

        starting = True
        while True:
            self.reclaim(study, starting)
            starting = False
            trials = study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if waiting or slots_held(trials) < self.n_trials:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "heartbeats are for Study.optimize"
                    trial = study.ask(space)
                if self.claimed(study, trial):
                    return trial
                continue
            if not any(t.state == TrialState.RUNNING for t in trials):
                return None
            time.sleep(self.heartbeat_interval)  # another worker's trial is running

    def claimed(self, study: Study, trial: Trial) -> bool:
        """Whether a new ``trial`` is within ``n_trials`` once every worker's concurrent
        asks are seen (trial numbers decide); a surplus one is failed, never run."""
        from optuna.trial import TrialState

        frozen = study._storage.get_trial(trial._trial_id)
        if frozen.system_attrs.get("failed_trial") is not None:
            return True  # a retry takes the place of the trial it retries
        others = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.number < trial.number or t.system_attrs.get("failed_trial") is not None
        ]
        if slots_held([t for t in others if t.number != trial.number]) < self.n_trials:
            return True
        study.tell(trial, state=TrialState.FAIL)
        return False

    def run_trial(
        self,
        study: Study,
        trial: Trial,
        space: dict[str, BaseDistribution],
        fixed: list[str],
        where: str,
    ) -> None:
        """Record the trial's job, run it in its job folder, tell its outcome once. An
        interrupt (Ctrl+C, a stopped job) queues the job again for the resume."""
        assert self.launcher is not None
        frozen = study._storage.get_trial(trial._trial_id)
        job = self.planned_job(frozen, space, fixed, where)
        folder = job_folder(frozen)
        beating = (
            nullcontext()
            if self.rdb is None
            else heartbeat(self.rdb, trial._trial_id, self.heartbeat_interval)
        )
        try:
            trial.set_user_attr(JOB, {"overrides": job, "worker": worker_name()})
            with beating:
                if folder != trial.number:
                    log.info(f"Trial {trial.number} runs trial {folder}'s job again")
                (done,) = self.launcher.launch([job], initial_job_idx=folder)
                self.tell(study, trial, done)
        except BaseException:
            requeue(study, trial._trial_id, self.max_retry)
            raise

    def tell(self, study: Study, trial: Trial, done: JobReturn) -> None:
        """Tell the study the job's value, or that it failed (once, with the reason)."""
        from optuna.trial import TrialState

        try:
            value = done.return_value  # raises the job's own error, if it raised
            values = [float(v) for v in (value if isinstance(value, Sequence) else [value])]
            if len(values) != len(self.directions) or not all(map(math.isfinite, values)):
                raise ValueError(f"the job returned {value!r}")
        except Exception as error:
            log.warning(f"Trial {trial.number} failed: {error}")
            trial.set_user_attr(FAILED_JOB, str(error)[:500])
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            return
        study.tell(trial, values, skip_if_finished=True)

    def save_best(self, study: Study) -> None:
        """``optimization_results.yaml`` in the sweep folder: the best trial(s) so far."""
        from optuna.trial import TrialState

        assert self.config is not None
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return
        if len(self.directions) == 1:
            best = study.best_trial
            log.info(f"Best value {best.value} with {best.params}")
            result: dict[str, Any] = {
                "name": "optuna",
                "best_params": best.params,
                "best_value": best.value,
            }
        else:
            front = [{"params": t.params, "values": t.values} for t in study.best_trials]
            result = {"name": "optuna", "solutions": front}
        path = Path(self.config.hydra.sweep.dir) / "optimization_results.yaml"
        OmegaConf.save(OmegaConf.create(result), path)
