"""Reading a large CSV table: hlt's table datamodule against pyarrow alone, as JSON.

    uv run benchmarks/bench_tables.py [--rows 1000000] [--repeats 3]

A generated table of ``--rows`` rows and 20 columns (18 real features, one text
feature of 50 categories with 1% empty cells, a text label of 3 classes) is read in
fresh child processes, each measuring its own wall time, CPU time (``getrusage``) and
peak resident memory (``VmHWM``: a child's ``ru_maxrss`` would count this parent's
memory at the fork), after reading a 2,000-row table of the same shape so that imports
(eager and lazy) are done before the clock starts:

- ``pyarrow``: ``pyarrow.csv.read_csv(path)`` alone, the baseline;
- ``pyarrow_same_imports``: the same read in a process that imported ``hlt_data`` first
  (torch and Lightning, which every training process holds: about 800 MB here);
- ``pyarrow_as_hlt_reads``: ``pyarrow.csv.read_csv`` as hlt calls it (column types from
  the first block, the jemalloc pool): what hlt's own parse costs, for reference;
- ``hlt``: ``hlt_data.TableDataModule(path, "label")``: the read, the split, the column
  types, medians, vocabularies and label vocabulary fitted on the training split, and
  the encoded float32 inputs ready for batches.

They run in turn ``--repeats`` times; each figure is the least of its repeats (the
machine's other jobs only ever add). ``goals`` comes first (issue 22): hlt's wall time
<= 1.5x ``pyarrow.csv.read_csv`` alone's, and hlt's peak RSS <= 2x pyarrow's, both
against bare pyarrow and against pyarrow in a process with the same imports (about
800 MB of any hlt process are torch and Lightning, whatever it reads). The rest are
figures for context: CPU seconds (all threads; user and system), the ratio against
the same imports, what each read added to its process's RSS, every repeat's seconds.

    uv run benchmarks/bench_tables.py --large [--large-rows 10000000] [--steps 300]

Tables larger than memory: a Parquet file of ``--large-rows`` rows of the same columns
(row groups of 1M rows), read whole by ``pyarrow.parquet.read_table`` in one child, then
trained on by the trainer (``data=table data.cache=true``, batches of 1,024, ``--steps``
steps, a few validation batches) twice: building the table cache, then reusing it; the
peak RSS of each process; then ``hlt predict`` with the first run's export on the same
file, which it streams (``hlt_data.table_stream``) into a predictions CSV, and on a
2,000-row file of the same columns (its fixed cost: imports, the predictor). Goal (issue
22): hlt's peaks, training and predicting, <= 2 GB; ``predict_rss_vs_read_table`` is
the predicting peak over pyarrow's whole read of the file, ``predict_rss_vs_2000_rows``
over predicting on the small file (1.0: memory does not grow with the file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]

FEATURES = 18

CHILD = {
    "pyarrow": textwrap.dedent(
        """
        import pyarrow.csv as pacsv
        def read(path):
            return pacsv.read_csv(path)
        """
    ),
    "pyarrow_same_imports": textwrap.dedent(
        """
        import hlt_data
        import pyarrow.csv as pacsv
        def read(path):
            return pacsv.read_csv(path)
        """
    ),
    "pyarrow_as_hlt_reads": textwrap.dedent(
        """
        import pyarrow as pa, pyarrow.csv as pacsv
        def read(path):
            with pacsv.open_csv(path) as first_block:
                types = first_block.schema
            return pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
                memory_pool=pa.jemalloc_memory_pool(),
            )
        """
    ),
    "hlt": textwrap.dedent(
        """
        from hlt_data import TableDataModule
        def read(path):
            return TableDataModule(path, "label", target_type="class", batch_size=1024)
        """
    ),
}
MEASURE = textwrap.dedent(
    """
    import json, resource, sys, time
    def rss_mb():  # this process's own peak (ru_maxrss also counts the parent's at fork)
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:")) / 1024
    read(sys.argv[2])  # a small table first: lazy imports happen before the clock
    after_import = rss_mb()
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    result = read(sys.argv[1])
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    print(json.dumps({"seconds": seconds, "cpu_seconds": user + system, "user_seconds": user,
                      "system_seconds": system, "peak_rss_mb": rss_mb(),
                      "rss_after_import_mb": after_import}))
    """
)


def slices(rows: int, seed: int = 0, size: int = 250_000) -> Iterator[pa.Table]:
    """The benchmark table, ``size`` rows at a time (no Python row loop)."""
    rng = np.random.default_rng(seed)
    words = np.array([f"category_{i:02d}" for i in range(50)])
    for start in range(0, rows, size):
        n = min(size, rows - start)
        columns = {f"x{i}": rng.normal(size=n).round(6) for i in range(FEATURES)}
        kinds = words[rng.integers(0, 50, size=n)].astype(object)
        kinds[rng.random(n) < 0.01] = None
        columns["kind"] = kinds
        columns["label"] = np.array(["alpha", "beta", "gamma"])[rng.integers(0, 3, size=n)]
        yield pa.table(columns)


def write_slices(path: Path, tables: Iterator[pa.Table], writer_class: Any) -> Path:
    """``tables`` written one after another into ``path`` by ``writer_class``."""
    first = next(tables)
    with writer_class(path, first.schema) as writer:
        writer.write_table(first)
        for table in tables:
            writer.write_table(table)
    return path


def write_table(path: Path, rows: int, seed: int = 0) -> Path:
    """The benchmark table as a CSV file."""
    return write_slices(path, slices(rows, seed), pacsv.CSVWriter)


def write_parquet(path: Path, rows: int) -> Path:
    """The benchmark table as a Parquet file, in row groups of 1M rows."""
    return write_slices(path, slices(rows, size=1_000_000), pq.ParquetWriter)


def measure(name: str, path: Path, small: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD[name] + MEASURE, str(path), str(small)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def least(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(min(run[key] for run in runs), 2) for key in runs[0]}


def peak_of(command: list[str]) -> dict[str, Any]:
    """Wall time and peak RSS of ``command`` run in a fresh child (its own getrusage)."""
    wrapper = textwrap.dedent(
        """
        import json, resource, subprocess, sys, time
        start = time.perf_counter()
        done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
        print(json.dumps({"seconds": time.perf_counter() - start, "rc": done.returncode,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "tail": done.stdout[-2000:] + done.stderr[-2000:]}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result['tail']}")
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items() if k != "tail"}


def large(rows: int, steps: int) -> dict[str, Any]:
    """A ``rows``-row Parquet file: pyarrow's whole read, and hlt training ``steps`` steps
    on it through the trainer (its table cache built, then reused)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(Path(tmp) / "large.parquet", rows)
        read = "import sys, pyarrow.parquet as pq; pq.read_table(sys.argv[1])"
        whole = peak_of([sys.executable, "-c", read, str(path)])
        train = [
            sys.executable, str(ROOT / "apps" / "trainer"), "data=table",
            f"data.path={path}", "data.target=label", "task=classification", "data.cache=true",
            "data.batch_size=1024", f"trainer.max_steps={steps}",
            "trainer.val_check_interval=100", "trainer.limit_val_batches=20",
            "trainer.limit_test_batches=20", "print_config=false",
            "trainer.enable_progress_bar=false",
        ]  # fmt: skip
        built = peak_of([*train, f"hydra.run.dir={tmp}/run1"])
        reused = peak_of([*train, f"hydra.run.dir={tmp}/run2"])
        cache = path.with_name(path.name + ".hlt-cache")
        hlt = [sys.executable, "-m", "hlt_trainer.cli", "predict", f"{tmp}/run1"]
        small = write_parquet(Path(tmp) / "small.parquet", 2_000)
        predicted_small = peak_of([*hlt, str(small), "--out", f"{tmp}/small.csv"])
        out = Path(tmp) / "predictions.csv"
        predicted = peak_of([*hlt, str(path), "--out", str(out)])
        predicted["predictions_mb"] = round(out.stat().st_size / 2**20, 1)
        return {
            "rows": rows,
            "parquet_mb": round(path.stat().st_size / 2**20, 1),
            "cache_mb": round(sum(f.stat().st_size for f in cache.iterdir()) / 2**20, 1),
            "steps": steps,
            "pyarrow_read_table": whole,
            "hlt_train_building_the_cache": built,
            "hlt_train_reusing_the_cache": reused,
            "hlt_predict_2000_rows": predicted_small,
            "hlt_predict": predicted,
            "rss_goal_met": max(built["peak_rss_mb"], reused["peak_rss_mb"]) <= 2048,
            "predict_rss_goal_met": predicted["peak_rss_mb"] <= 2048,
            "predict_rss_vs_read_table": round(predicted["peak_rss_mb"] / whole["peak_rss_mb"], 2),
            "predict_rss_vs_2000_rows": round(
                predicted["peak_rss_mb"] / predicted_small["peak_rss_mb"], 2
            ),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="the larger-than-memory check")
    parser.add_argument("--large-rows", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    if args.large:
        load_before = os.getloadavg()
        result = large(args.large_rows, args.steps)
        result["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
        result["load_average_1min"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
        print(json.dumps(result, indent=2))
        return
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CHILD}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_table(Path(tmp) / "table.csv", args.rows)
        small = write_table(Path(tmp) / "small.csv", 2_000, seed=1)
        size_mb = path.stat().st_size / 2**20
        measure("pyarrow", path, small)  # warms the page cache for both
        for _ in range(args.repeats):
            for name in CHILD:
                runs[name].append(measure(name, path, small))
    base, same, ours = (least(runs[name]) for name in ("pyarrow", "pyarrow_same_imports", "hlt"))
    load_after = os.getloadavg()

    def added(run: dict[str, float]) -> float:
        return run["peak_rss_mb"] - run["rss_after_import_mb"]

    def goal(ratio: float, limit: float, **figures: float) -> dict[str, Any]:
        return {**figures, "ratio": round(ratio, 2), "goal": f"<= {limit}", "met": ratio <= limit}

    result = {
        "goals": {
            "time_vs_pyarrow": goal(
                ours["seconds"] / base["seconds"],
                1.5,
                hlt_seconds=ours["seconds"],
                pyarrow_seconds=base["seconds"],
            ),
            "peak_rss_vs_pyarrow": goal(
                ours["peak_rss_mb"] / base["peak_rss_mb"],
                2.0,
                hlt_mb=ours["peak_rss_mb"],
                pyarrow_mb=base["peak_rss_mb"],
            ),
            "peak_rss_vs_pyarrow_same_imports": goal(
                ours["peak_rss_mb"] / same["peak_rss_mb"],
                2.0,
                hlt_mb=ours["peak_rss_mb"],
                pyarrow_same_imports_mb=same["peak_rss_mb"],
            ),
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
        "rows": args.rows,
        "columns": FEATURES + 2,
        "csv_mb": round(size_mb, 1),
        "repeats": args.repeats,
        "cpu_ratio": round(ours["cpu_seconds"] / base["cpu_seconds"], 2),
        "time_ratio_vs_same_imports": round(ours["seconds"] / same["seconds"], 2),
        "added_rss_ratio": round(added(ours) / max(added(base), 1.0), 2),
        **{name: least(runs[name]) for name in CHILD},
        "seconds_each": {name: [round(r["seconds"], 2) for r in runs[name]] for name in CHILD},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
