"""Start-up time of the trainer app against importing Hydra and Lightning.

Config-only commands (``--help``, ``--cfg job``, ``--info searchpath``, a config error)
are timed against ``python -c "import hydra"``; the time to the first training step
(a callback prints the clock at the first batch) against ``python -c "import lightning"``.
All commands use the workspace interpreter directly (``uv run``'s own check is not
counted); repeats are interleaved and medians printed as JSON with ratios.

``--fresh-clone`` instead measures a new machine's first start with a warm uv cache and
``PYTHONDONTWRITEBYTECODE=1`` (as containers and these machines set it): a clone of the
committed HEAD, ``uv sync --frozen`` with the workspace's ``compile-bytecode`` setting and
with it turned off (``UV_COMPILE_BYTECODE=false``), then the first and second ``uv run``
of the trainer up to its first training step, in each.

    uv run python benchmarks/startup.py --repeats 5
    uv run python benchmarks/startup.py --fresh-clone
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "apps" / "trainer")
FIRST_STEP = "FIRST_STEP_AT="

CALLBACK = f'''
import time, lightning as L
class FirstStep(L.Callback):
    def on_train_batch_start(self, *args):
        print("{FIRST_STEP}%.6f" % time.time(), flush=True)
        raise SystemExit(0)
'''


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    end = time.time()
    for line in done.stdout.splitlines():
        if line.startswith(FIRST_STEP):
            return float(line[len(FIRST_STEP) :]) - start, ""
    return end - start, "" if done.returncode in (0, 1, 2) else done.stderr[-300:]


def fresh_clone() -> dict[str, object]:
    """Seconds for sync, first run and second run of a fresh clone, bytecode compiled at
    sync (the workspace setting) or not."""
    result: dict[str, object] = {"benchmark": "startup --fresh-clone"}
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
        Path(tmp, "hlt_first_step.py").write_text(CALLBACK)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
        base.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=tmp, HYDRA_FULL_ERROR="0")
        for name, compile_setting in (
            ("compiled at sync", {}),
            ("not compiled", {"UV_COMPILE_BYTECODE": "false"}),
        ):
            clone = Path(tmp, name.replace(" ", "_"))
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            env = {**base, **compile_setting}
            start = time.time()
            sync = subprocess.run(
                ["uv", "sync", "--frozen"], cwd=clone, env=env, capture_output=True, text=True
            )
            timings: dict[str, object] = {"uv sync": round(time.time() - start, 1)}
            timings["sync compiled"] = "Bytecode compiled" in sync.stderr
            run = [
                "uv",
                "run",
                "apps/trainer",
                "+callbacks.first_step._target_=hlt_first_step.FirstStep",
                f"hydra.run.dir={tmp}/run",
                "logger=none",
            ]
            for attempt in ("first run", "second run"):
                start = time.time()
                done = subprocess.run(run, cwd=clone, env=env, capture_output=True, text=True)
                first = [line for line in done.stdout.splitlines() if line.startswith(FIRST_STEP)]
                timings[attempt] = (
                    round(float(first[0][len(FIRST_STEP) :]) - start, 1)
                    if first
                    else done.stderr[-300:]
                )
            result[name] = timings
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fresh-clone", action="store_true", help="see the module doc")
    args = parser.parse_args()
    if args.fresh_clone:
        print(json.dumps(fresh_clone(), indent=2))
        return
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "hlt_first_step.py").write_text(CALLBACK)
        env = dict(os.environ, PYTHONPATH=tmp, HYDRA_FULL_ERROR="0")
        commands = {
            "import hydra": [py, "-c", "import hydra"],
            "--help": [py, APP, "--help"],
            "--cfg job": [py, APP, "--cfg", "job"],
            "--info searchpath": [py, APP, "--info", "searchpath"],
            "config error": [py, APP, "trainer.max_epochs=abc"],
            "import lightning": [py, "-c", "import lightning"],
            "first step": [
                py,
                APP,
                "+callbacks.first_step._target_=hlt_first_step.FirstStep",
                f"hydra.run.dir={tmp}/run",
                "logger=none",
            ],
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        problems: dict[str, str] = {}
        names = list(commands)
        for r in range(args.repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                t, problem = timed(commands[name], env)
                times[name].append(t)
                if problem:
                    problems[name] = problem
    med = {k: statistics.median(v) for k, v in times.items()}
    hydra, lightning = med["import hydra"], med["import lightning"]
    config_only = ["--help", "--cfg job", "--info searchpath", "config error"]
    result = {
        "benchmark": "startup",
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "all_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "ratio_to_import_hydra": {k: round(med[k] / hydra, 3) for k in config_only},
        "first_step_minus_import_lightning_s": round(med["first step"] - lightning, 3),
        "goals": {
            "config_only<=1.5x_import_hydra": all(med[k] <= 1.5 * hydra for k in config_only),
            "first_step<=import_lightning+3s": med["first step"] <= lightning + 3.0,
        },
        "problems": problems,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
