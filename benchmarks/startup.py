"""Start-up time of the trainer app against a minimal Hydra app and importing Lightning.

Config-only commands (``--help``, ``--cfg job``, ``--info searchpath``, a config error)
are timed against the same commands of a minimal Hydra app (one config group of one
option, written to a temporary folder; a config error against its ``--cfg job``) and
``python -c "import hydra"``, and ``--help`` also against itself without
``hlt_core.hydra_compat.share_config_store`` (Hydra 1.3 copying its ConfigStore for each
lookup: the state before that change); the time to the first training step (a callback prints the
clock at the first batch) against ``python -c "import lightning"``. ``--busy 2`` keeps
two processes spinning on the CPU meanwhile, as on a busy login node.
All commands use the workspace interpreter directly (``uv run``'s own check is not
counted); repeats are interleaved and medians printed as JSON with ratios.

``--fresh-clone`` instead measures a new machine's first start with a warm uv cache and
``PYTHONDONTWRITEBYTECODE=1`` (as containers and these machines set it): a clone of the
committed HEAD, ``uv sync --frozen`` with the workspace's ``compile-bytecode`` setting and
with it turned off (``UV_COMPILE_BYTECODE=false``), then the first and second ``uv run``
of the trainer up to its first training step, in each.

    uv run python benchmarks/startup.py --repeats 5 [--busy 2] [--config-only]
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


# the trainer as Hydra 1.3 runs it without hlt_core.hydra_compat.share_config_store: the
# "before" of that change, timed in the same run
STORE_COPIED = (
    "import hlt_core.hydra_compat as compat; compat.share_config_store = lambda: None; "
    "from hlt_trainer.app import main; main()"
)

MINIMAL_APP = """
import hydra

@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg):
    pass

main()
"""


def minimal_app(folder: Path) -> Path:
    """A Hydra app with one config group (``db``) of one option, as Hydra's tutorial."""
    (folder / "conf" / "db").mkdir(parents=True)
    (folder / "conf" / "config.yaml").write_text("defaults:\n  - db: mysql\n")
    (folder / "conf" / "db" / "mysql.yaml").write_text("driver: mysql\nuser: omry\n")
    (folder / "app.py").write_text(MINIMAL_APP)
    return folder / "app.py"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    end = time.time()
    for line in done.stdout.splitlines():
        if line.startswith(FIRST_STEP):
            return float(line[len(FIRST_STEP) :]) - start, ""
    return end - start, "" if done.returncode in (0, 1, 2) else done.stderr[-300:]


def compile_pass(stderr: str) -> str | None:
    """uv's "Bytecode compiled N files in T" line, if it printed one."""
    return next((line for line in stderr.splitlines() if "Bytecode compiled" in line), None)


def fresh_clone() -> dict[str, object]:
    """Seconds for sync, first run and second run of a fresh clone with the workspace's
    ``compile-bytecode`` setting and, as the baseline, with that line removed."""
    result: dict[str, object] = {
        "benchmark": "startup --fresh-clone",
        "load_average_1min_before": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
        Path(tmp, "hlt_first_step.py").write_text(CALLBACK)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
        base.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=tmp, HYDRA_FULL_ERROR="0")
        for name in ("workspace setting", "setting removed"):
            clone = Path(tmp, name.replace(" ", "_"))
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            if name == "setting removed":
                pyproject = clone / "pyproject.toml"
                lines = pyproject.read_text().splitlines(keepends=True)
                pyproject.write_text("".join(x for x in lines if "compile-bytecode" not in x))
            env = base
            start = time.time()
            sync = subprocess.run(
                ["uv", "sync", "--frozen"], cwd=clone, env=env, capture_output=True, text=True
            )
            timings: dict[str, object] = {"uv sync": round(time.time() - start, 1)}
            timings["uv sync compile pass"] = compile_pass(sync.stderr)
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
                timings[f"{attempt} compile pass"] = compile_pass(done.stderr)
            result[name] = timings
        result["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fresh-clone", action="store_true", help="see the module doc")
    parser.add_argument("--busy", type=int, default=0, help="processes spinning meanwhile")
    parser.add_argument("--config-only", action="store_true", help="skip Lightning's timings")
    args = parser.parse_args()
    if args.fresh_clone:
        print(json.dumps(fresh_clone(), indent=2))
        return
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "hlt_first_step.py").write_text(CALLBACK)
        env = dict(os.environ, PYTHONPATH=tmp, HYDRA_FULL_ERROR="0")
        minimal = str(minimal_app(Path(tmp, "minimal")))
        commands = {
            "import hydra": [py, "-c", "import hydra"],
            "minimal --help": [py, minimal, "--help"],
            "minimal --cfg job": [py, minimal, "--cfg", "job"],
            "minimal --info searchpath": [py, minimal, "--info", "searchpath"],
            "--help": [py, APP, "--help"],
            "--cfg job": [py, APP, "--cfg", "job"],
            "--info searchpath": [py, APP, "--info", "searchpath"],
            "config error": [py, APP, "trainer.max_epochs=abc"],
            "--help, store copied": [py, "-c", STORE_COPIED, "--help"],
        }
        if not args.config_only:
            commands["import lightning"] = [py, "-c", "import lightning"]
            commands["first step"] = [
                py,
                APP,
                "+callbacks.first_step._target_=hlt_first_step.FirstStep",
                f"hydra.run.dir={tmp}/run",
                "logger=none",
            ]
        spin = [py, "-c", "while True: pass"]
        busy = [subprocess.Popen(spin) for _ in range(args.busy)]
        load_before = os.getloadavg()[0]
        times: dict[str, list[float]] = {k: [] for k in commands}
        problems: dict[str, str] = {}
        names = list(commands)
        for r in range(args.repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                t, problem = timed(commands[name], env)
                times[name].append(t)
                if problem:
                    problems[name] = problem
        for process in busy:
            process.kill()
            process.wait()
    med = {k: statistics.median(v) for k, v in times.items()}
    copied = med["--help, store copied"]
    hydra = med["import hydra"]
    config_only = ["--help", "--cfg job", "--info searchpath", "config error"]
    # the minimal app's same command; a config error fails after composing, as --cfg job
    baseline = {k: f"minimal {k}" for k in config_only[:3]} | {"config error": "minimal --cfg job"}
    to_minimal = {k: round(med[k] / med[baseline[k]], 3) for k in config_only}
    result: dict[str, object] = {
        "benchmark": "startup",
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "busy_processes": args.busy,
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "repeats": args.repeats,
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "all_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "ratio_to_minimal_hydra_app": to_minimal,
        "ratio_to_import_hydra": {k: round(med[k] / hydra, 3) for k in config_only},
        "--help before share_config_store": {
            "ratio_to_minimal_hydra_app": round(copied / med["minimal --help"], 3),
            "--help now, ratio to it": round(med["--help"] / copied, 3),
        },
        # the three commands; a config error is reported beside them, not judged
        "goals": {
            "config_only<=1.5x_minimal_app": all(to_minimal[k] <= 1.5 for k in config_only[:3])
        },
        "problems": problems,
    }
    if not args.config_only:
        lightning = med["import lightning"]
        result["first_step_minus_import_lightning_s"] = round(med["first step"] - lightning, 3)
        result["goals"]["first_step<=import_lightning+3s"] = med["first step"] <= lightning + 3
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
