"""A tiny Hydra app for the sweeper tests (no torch): hlt's Optuna sweeper runs it as it
runs the trainer. Each job writes what it ran with (``job.json``, and ``results.json`` as
the trainer does) and appends its pid to ``ends.log`` when it ends. Set by the tests:
``SWEEP_APP_FAIL`` (job numbers, or ``all``) fails those jobs; ``SWEEP_APP_STOP`` (a job
number) raises KeyboardInterrupt in it once, as Ctrl+C would; ``SWEEP_APP_KILL`` (a job
number) SIGKILLs the worker that first runs it, mid-job, as a lost machine would;
``SWEEP_APP_WORKERS`` (a count) holds each job until that many workers have run one, so
that every worker is alive when one is killed."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


def wait_for_workers(sweep_dir: Path, count: int) -> None:
    seen = sweep_dir / "workers"
    seen.mkdir(exist_ok=True)
    (seen / str(os.getpid())).touch()
    for _ in range(1200):
        if len(list(seen.iterdir())) >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{count} workers never started")


def once(marker: Path) -> bool:
    """True the first time, for the whole sweep."""
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def job(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    out = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    config = OmegaConf.to_container(cfg, resolve=True)
    (out / "job.json").write_text(json.dumps({"overrides": overrides, "config": config}))
    number = str(hydra_cfg.job.num)
    if "SWEEP_APP_WORKERS" in os.environ:
        wait_for_workers(Path(hydra_cfg.sweep.dir), int(os.environ["SWEEP_APP_WORKERS"]))
    if number == os.environ.get("SWEEP_APP_STOP") and once(out / "stopped"):
        raise KeyboardInterrupt
    if number == os.environ.get("SWEEP_APP_KILL") and once(out / "killed"):
        os.kill(os.getpid(), signal.SIGKILL)
    failing = os.environ.get("SWEEP_APP_FAIL", "").split(",")
    value = math.nan if "all" in failing or number in failing else (cfg.lr - 0.01) ** 2
    record = {"status": "failed" if math.isnan(value) else "ok", "val/loss": value}
    record["overrides"] = " ".join(overrides)
    (out / "results.json").write_text(json.dumps(record))
    with (out / "ends.log").open("a") as ends:
        ends.write(f"{os.getpid()}\n")
    return value


HERE = str(Path(__file__).parent)  # absolute: the tests import this module by path
main = hydra.main(version_base="1.3", config_path=HERE, config_name="sweep_app")(job)

if __name__ == "__main__":
    main()
