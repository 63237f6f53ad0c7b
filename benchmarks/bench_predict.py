"""``hlt predict`` over folders of many small files: time against file count, as JSON.

    uv run python benchmarks/bench_predict.py [--files 1000 10000] [--rows 2]

Trains one tiny table classifier through the documented command, writes folders of
``--files`` CSV files of ``--rows`` rows each, and times ``hlt predict`` on each folder
in-process, its progress display drawn as on a terminal (``TTY_COMPATIBLE=1``; the
display is what grew quadratically when it held a task per file). A one-file folder
measures the fixed cost (loading the predictor), subtracted from the others.
Goal: time linear in the number of files: ``ratio`` (largest / smallest, fixed cost
subtracted) close to ``linear_ratio``, ``per_file_ms`` about flat.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ["TTY_COMPATIBLE"] = "1"  # rich draws its live display, as for a user

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "print_config=false",
]


def write_csv(path: Path, rows: int, rng: np.random.Generator) -> None:
    values = rng.normal(size=(rows, 3))
    labels = rng.choice(["a", "b"], size=rows)
    lines = ["x,y,z,label"] + [
        f"{a:.4f},{b:.4f},{c:.4f},{label}" for (a, b, c), label in zip(values, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


def trained_export(folder: Path) -> Path:
    data = folder / "train.csv"
    write_csv(data, 200, np.random.default_rng(0))
    run = folder / "run"
    command = [sys.executable, str(ROOT / "apps" / "trainer"), "data=table", f"data.path={data}"]
    command += ["data.target=label", f"hydra.run.dir={run}", *TRAIN]
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return run / "export"


def time_predict(export: Path, inputs: Path, out: Path) -> tuple[float, int]:
    import torch

    from hlt_trainer.predict import predict

    torch.set_num_threads(1)  # two-row batches; other jobs on the machine disturb less

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rows = predict(export, inputs, out)
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rows", type=int, default=2, help="rows per file")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        export = trained_export(folder)
        one = folder / "one.csv"
        write_csv(one, args.rows, rng)
        # the fixed cost (loading the predictor), after a first call that imports
        fixed = min(time_predict(export, one, folder / f"one{i}.csv")[0] for i in range(3))
        for count in sorted(args.files):
            inputs = folder / f"files{count}"
            inputs.mkdir()
            for i in range(count):
                write_csv(inputs / f"{i:06d}.csv", args.rows, rng)
            seconds, rows = time_predict(export, inputs, folder / f"p{count}.csv")
            assert rows == count * args.rows
            results[count] = {"seconds": round(seconds, 3)}
    for count, result in results.items():
        result["per_file_ms"] = round((result["seconds"] - fixed) / count * 1e3, 3)
    small, large = min(results), max(results)
    growth = {n: results[n]["seconds"] - fixed for n in (small, large)}
    print(
        json.dumps(
            {
                "files": results,
                "rows_per_file": args.rows,
                "fixed_seconds": round(fixed, 3),
                "ratio": round(growth[large] / growth[small], 2),
                "linear_ratio": large / small,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
