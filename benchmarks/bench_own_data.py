"""hlt on raw tables that scikit-learn ships, against a scaled linear baseline, as JSON.

    uv run benchmarks/bench_own_data.py [--tables cancer wine diabetes] [--split-seeds 0]

Each table is written to a CSV exactly as scikit-learn ships it (raw units; diabetes with
its whole-number targets and unscaled features) and trained through the documented
command with default settings:

    uv run apps/trainer data=table data.path=<csv> data.target=target task=<task>

The baseline is ``StandardScaler`` + ``LogisticRegression`` (classification) or
``LinearRegression`` (regression) fitted on hlt's own training split
(``hlt_data.splits.split_indices`` with the data config's fractions and seed) and scored
on the same test rows. Goal: hlt within 0.01 accuracy or 0.05 R² of the baseline, or
better.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import StandardScaler

from hlt_data.splits import split_indices

ROOT = Path(__file__).resolve().parents[1]
FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}  # data=table's default
TABLES = {
    "cancer": (load_breast_cancer, "classification", "acc", 0.01),
    "wine": (load_wine, "classification", "acc", 0.01),
    "diabetes": (lambda **kw: load_diabetes(scaled=False, **kw), "regression", "r2", 0.05),
}


def write_table(name: str, folder: Path) -> Path:
    frame = TABLES[name][0](as_frame=True).frame
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def baseline(path: Path, task: str, split_seed: int) -> float:
    data = np.genfromtxt(path, delimiter=",", skip_header=1)
    inputs, targets = data[:, :-1], data[:, -1]
    rows = split_indices(len(data), FRACTIONS, split_seed)
    train, test = rows["train"], rows["test"]
    scaler = StandardScaler().fit(inputs[train])
    if task == "classification":
        model = LogisticRegression(max_iter=5000).fit(
            scaler.transform(inputs[train]), targets[train]
        )
        return float(accuracy_score(targets[test], model.predict(scaler.transform(inputs[test]))))
    model = LinearRegression().fit(scaler.transform(inputs[train]), targets[train])
    return float(r2_score(targets[test], model.predict(scaler.transform(inputs[test]))))


def hlt(path: Path, task: str, split_seed: int, run_dir: Path) -> dict:
    command = [
        sys.executable, str(ROOT / "apps" / "trainer"),
        "data=table", f"data.path={path}", "data.target=target", f"task={task}",
        f"data.split_seed={split_seed}", f"hydra.run.dir={run_dir}",
        "print_config=false", "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return json.loads((run_dir / "results.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--split-seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tables:
            _, task, metric, tolerance = TABLES[name]
            path = write_table(name, Path(tmp))
            for seed in args.split_seeds:
                record = hlt(path, task, seed, Path(tmp) / f"{name}-{seed}")
                ours, theirs = record[f"test/{metric}"], baseline(path, task, seed)
                results.append(
                    {
                        "table": name,
                        "split_seed": seed,
                        "metric": f"test/{metric}",
                        "hlt": round(ours, 4),
                        "baseline": round(theirs, 4),
                        "goal_met": ours >= theirs - tolerance,
                        "best_epoch": record["best_epoch"],
                    }
                )
                print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"machine": platform.machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
