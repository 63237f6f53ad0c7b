"""Resume means the same run: ``resume=<run folder>`` continues that run, in its folder,
with its own saved overrides.

A run is what its overrides made it (``<run>/.hydra/overrides.yaml``), so the command
line of a resume is rebuilt from them (``resume_argv``), before Hydra composes anything:
the saved overrides, then ``ckpt_path=<run>/checkpoints/last.ckpt`` and
``hydra.run.dir=<run>``. ``ckpt_path=`` naming a checkpoint inside a run folder resumes
the same way from that checkpoint. An override given at resume that would change the run
is refused in one line; only ``SAFE_KEYS`` may change (extend training, switch loggers,
evaluate differently, read data with other workers), and those changes are applied and
recorded (``resume_changes``, in results.json). A job of a multirun resumes from the
``last.ckpt`` in its own folder when the sweep is run again (``sweep_job_checkpoint``).
Import-light: the app reads it before Hydra starts.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from hlt_core.errors import UserError

# keys that may change at resume: they change how long the run trains, where it is
# logged, what is evaluated at its end, and how data is read, never what is learnt
SAFE_KEYS = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.max_time",
    "trainer.enable_progress_bar",
    "logger",
    "test",
    "predict",
    "predictions",
    "export_onnx",
    "print_config",
    "data.num_workers",
    "data.pin_memory",
    "data.persistent_workers",
    "data.worker_chunk",
)
# written by a resume itself: replaced, never compared
OWN_KEYS = ("resume", "resume_changes", "ckpt_path")
MULTIRUN_FLAGS = ("-m", "--multirun")


def override_key(override: str) -> str:
    """The key of a ``key=value`` override, without Hydra's ``+``/``++``/``~`` prefix."""
    return override.split("=", 1)[0].lstrip("+~")


def _value(override: str) -> str:
    return override.split("=", 1)[1] if "=" in override else ""


def _hydra_setting(key: str) -> bool:
    return key.startswith(("hydra.", "hydra/")) and key != "hydra.run.dir"


def _safe(key: str) -> bool:
    return any(key == safe or key.startswith(f"{safe}.") for safe in SAFE_KEYS)


def run_folder_of(checkpoint: str) -> Path | None:
    """The run folder holding ``checkpoint`` (``<run>/checkpoints/<name>.ckpt`` beside
    ``<run>/.hydra/overrides.yaml``), or None."""
    path = Path(checkpoint).resolve()
    run = path.parent.parent
    if path.parent.name == "checkpoints" and (run / ".hydra" / "overrides.yaml").is_file():
        return run
    return None


def saved_overrides(folder: Path, given: Sequence[str] = ()) -> list[str]:
    """The overrides the run in ``folder`` was started with (a list of strings, read as
    plain YAML). One naming a ``_target_`` (code to run) is never replayed from the file:
    it is refused unless the command line gives it again, ``given``."""
    file = folder / ".hydra" / "overrides.yaml"
    if not file.is_file():
        raise UserError(f"resume={folder}: not a run folder (no .hydra/overrides.yaml)")
    saved = OmegaConf.load(file)
    if not isinstance(saved, ListConfig) or not all(isinstance(o, str) for o in saved):
        raise UserError(f"resume={folder}: {file} is not a list of overrides")
    for override in saved:
        if "_target_" in override_key(override) and override not in given:
            raise UserError(
                f"resume={folder}: {file} sets {override_key(override)}, which is not replayed "
                f"from a file; give {override} again to keep it"
            )
    return [str(o) for o in saved]


def _target(args: Sequence[str]) -> tuple[Path, str] | None:
    """The run folder and checkpoint a command line resumes from, if it resumes."""
    given = {override_key(a): _value(a) for a in args if "=" in a}
    if "resume" in given:
        folder = Path(given["resume"]).resolve()
        return folder, str(folder / "checkpoints" / "last.ckpt")
    ckpt = given.get("ckpt_path")
    if not ckpt or given.get("train", "true").lower() == "false":
        return None
    run = run_folder_of(ckpt)
    return None if run is None else (run, str(Path(ckpt).resolve()))


def resume_argv(argv: Sequence[str]) -> list[str] | None:
    """The command line that continues the run named by ``resume=<folder>`` (or by a
    training ``ckpt_path=`` inside a run folder), or None when ``argv`` resumes nothing."""
    args = list(argv[1:])
    target = _target(args)
    if target is None:
        return None
    folder, checkpoint = target
    if any(a in MULTIRUN_FLAGS for a in args):
        raise UserError(f"resume={folder} continues one run; a sweep resumes by running it again")
    saved = [o for o in saved_overrides(folder, args) if override_key(o) not in OWN_KEYS]
    if not Path(checkpoint).is_file():
        raise UserError(f"resume={folder}: no {checkpoint} to resume from")
    before = {override_key(o): _value(o) for o in saved}
    # flags and Hydra's own settings (logging, job name) pass; they change no result
    passed = [a for a in args if a.startswith("-") or _hydra_setting(override_key(a))]
    changes = []
    for override in (a for a in args if "=" in a and a not in passed):
        key = override_key(override)
        if key == "hydra.run.dir" and Path(_value(override).strip("'\"")).resolve() != folder:
            raise UserError(
                f"resume={folder} continues the run in its own folder, not {_value(override)}; "
                "to start a new run from its weights use model.init_from=<run folder>"
            )
        if key in OWN_KEYS or key == "hydra.run.dir" or before.get(key) == _value(override):
            continue
        if not _safe(key):
            was = f"{key}={before[key]}" if key in before else "not set"
            raise UserError(
                f"resume={folder}: {override} would change the run (saved: {was}); at resume "
                f"only {', '.join(SAFE_KEYS)} may change; start a new run for the rest"
            )
        changes.append(override)
    changed = {override_key(c) for c in changes}
    kept = [o for o in saved if override_key(o) not in changed]
    quoted = ", ".join(f"'{c}'" for c in changes)
    return [
        argv[0],
        *passed,
        *kept,
        *changes,
        f"resume='{folder}'",
        f"resume_changes=[{quoted}]",
        f"ckpt_path='{checkpoint}'",
        f"hydra.run.dir='{folder}'",
    ]


def resume_command(run_dir: str | Path) -> str:
    """The exact command that continues a stopped run: ``resume=<run folder>``, or for a
    job of a multirun the sweep's own command with its ``hydra.sweep.dir``."""
    try:
        hydra = HydraConfig.get()
    except ValueError:  # run() called outside the app
        hydra = None
    app = ["uv", "run", "apps/trainer"]
    if hydra is not None and hydra.mode == RunMode.MULTIRUN:
        args = [a for a in sys.argv[1:] if override_key(a) != "hydra.sweep.dir"]
        sweep = Path(str(hydra.sweep.dir)).resolve()
        return shlex.join([*app, *args, f"hydra.sweep.dir={sweep}"])
    return shlex.join([*app, f"resume={Path(run_dir).resolve()}"])


def sweep_job_checkpoint(cfg: DictConfig) -> None:
    """A job of a multirun run again (the sweep resumed) continues from the ``last.ckpt``
    its killed or stopped run left in its folder, unless ``ckpt_path`` names another."""
    try:
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return
    last = Path(cfg.paths.checkpoint_dir) / "last.ckpt"
    if multirun and cfg.train and not cfg.ckpt_path and last.is_file():
        with open_dict(cfg):
            cfg.ckpt_path = str(last)
