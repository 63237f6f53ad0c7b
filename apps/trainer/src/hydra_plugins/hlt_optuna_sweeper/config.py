"""The settings of hlt's Optuna sweeper: the schema of ``hydra/sweeper=hlt_optuna``.

No ``from __future__ import annotations`` here: Hydra loads plugin modules without
registering them in ``sys.modules``, where dataclasses would look string annotations up.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class HltOptunaSweeperConf:
    """``hydra/sweeper=hlt_optuna``: the settings of ``ResumableOptunaSweeper``."""

    _target_: str = "hydra_plugins.hlt_optuna_sweeper.hlt_optuna_sweeper.ResumableOptunaSweeper"
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler"})
    direction: Any = "minimize"  # or a list of directions, one per returned value
    storage: str | None = None  # a SQLAlchemy URL; None: in memory, not resumable
    study_name: str | None = None  # None: the config's `name`
    n_trials: int = 20  # in total in the study, over every worker and every resume
    params: dict[str, str] | None = None  # key: Hydra sweep (interval, choice, range)
    heartbeat_interval: int = 10  # seconds between a running trial's heartbeats
    grace_period: int = 60  # seconds without a heartbeat before a trial counts as dead
    max_retry: int | None = 3  # re-runs of a trial whose worker died, then a new trial
