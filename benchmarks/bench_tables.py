"""Reading a large CSV table: hlt's table datamodule against pyarrow alone, as JSON.

    uv run benchmarks/bench_tables.py [--rows 1000000]

A generated table of ``--rows`` rows and 20 columns (18 real features, one text
feature of 50 categories with 1% empty cells, a text label of 3 classes) is read in
fresh child processes, each measuring its own wall time and peak resident memory
(``resource.getrusage``), after reading a 2,000-row table of the same shape so that
imports (eager and lazy) are done before the clock starts:

- ``pyarrow``: ``pyarrow.csv.read_csv(path)`` alone, the baseline;
- ``hlt``: ``hlt_data.TableDataModule(path, "label")``: the read, the split, the column
  types, medians, vocabularies and label vocabulary fitted on the training split, and
  the encoded float32 inputs ready for batches.

Goals (issue 22): hlt's read time <= 1.5x and its peak RSS <= 2x pyarrow's, measured
in the same run. hlt's peak includes torch and Lightning, which its package imports
(``rss_after_import_mb`` says how much of the peak that is; ``added_rss_ratio`` compares
what each read added to it).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

FEATURES = 18

CHILD = {
    "pyarrow": textwrap.dedent(
        """
        import pyarrow.csv as pacsv
        def read(path):
            return pacsv.read_csv(path)
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
    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    read(sys.argv[2])  # a small table first: lazy imports happen before the clock
    after_import = rss_mb()
    start = time.perf_counter()
    result = read(sys.argv[1])
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mb": rss_mb(),
                      "rss_after_import_mb": after_import}))
    """
)


def write_table(path: Path, rows: int, seed: int = 0) -> Path:
    """The benchmark table, written by pyarrow in slices (no Python row loop)."""
    rng = np.random.default_rng(seed)
    words = np.array([f"category_{i:02d}" for i in range(50)])
    writer = None
    for start in range(0, rows, 250_000):
        n = min(250_000, rows - start)
        columns = {f"x{i}": rng.normal(size=n).round(6) for i in range(FEATURES)}
        kinds = words[rng.integers(0, 50, size=n)].astype(object)
        kinds[rng.random(n) < 0.01] = None
        columns["kind"] = kinds
        columns["label"] = np.array(["alpha", "beta", "gamma"])[rng.integers(0, 3, size=n)]
        table = pa.table(columns)
        if writer is None:
            writer = pacsv.CSVWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    return path


def measure(name: str, path: Path, small: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD[name] + MEASURE, str(path), str(small)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_table(Path(tmp) / "table.csv", args.rows)
        small = write_table(Path(tmp) / "small.csv", 2_000, seed=1)
        size_mb = path.stat().st_size / 2**20
        measure("pyarrow", path, small)  # warms the page cache for both
        base, ours = measure("pyarrow", path, small), measure("hlt", path, small)
    time_ratio = ours["seconds"] / base["seconds"]
    rss_ratio = ours["peak_rss_mb"] / base["peak_rss_mb"]
    added = (ours["peak_rss_mb"] - ours["rss_after_import_mb"]) / max(
        base["peak_rss_mb"] - base["rss_after_import_mb"], 1.0
    )
    print(
        json.dumps(
            {
                "machine": platform.machine(),
                "rows": args.rows,
                "columns": FEATURES + 2,
                "csv_mb": round(size_mb, 1),
                "pyarrow": {k: round(v, 2) for k, v in base.items()},
                "hlt": {k: round(v, 2) for k, v in ours.items()},
                "time_ratio": round(time_ratio, 2),
                "rss_ratio": round(rss_ratio, 2),
                "added_rss_ratio": round(added, 2),
                "time_goal_met": time_ratio <= 1.5,
                "rss_goal_met": rss_ratio <= 2.0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
