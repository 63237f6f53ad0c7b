"""hlt on real tables that PyPI packages ship, against gradient boosting and a linear
model on the same test rows, as JSON.

    OMP_NUM_THREADS=1 uv run --group bench benchmarks/bench_own_data.py [--model tabm]
        [--tables cars_mpg ...] [--split-seeds 0 1 2] [--overrides model.members=16 ...]

Each table is written to a CSV as its package ships it (text columns as text, missing
values as empty cells; an identifier column dropped, rows without a target dropped) and
trained through the documented command with default settings:

    uv run apps/trainer data=table data.path=<csv> data.target=<column> task=<task> model=<model>

Baselines, fitted on hlt's own training split (``hlt_data.splits.split_indices`` with
the data config's fractions and seed; hlt's validation rows are left out of their
training, as hlt trains without them) and scored on the same test rows:
``HistGradientBoosting`` with its native categories and missing values, and a scaled
linear model (median + indicator for missing numbers, one-hot text columns,
``StandardScaler``, then ``LogisticRegression`` or ``Ridge``).

Each run also reports the scores on hlt's validation rows (``*_val``; for hlt, of the
checkpoint it tests, the one early stopping kept by ``val/loss`` on those rows, so hlt's is
optimistic): a way to compare hlt's settings without looking at the test rows.

Goals (issue 22): mean gap to HistGradientBoosting >= 0 over the tables, hlt never below
the linear model, and each table (mean over split seeds) within 0.01 accuracy / 0.02 R²
of HistGradientBoosting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import palmerpenguins
import pandas as pd
import statsmodels.api as sm
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from vega_datasets import local_data

from hlt_data.splits import split_indices

ROOT = Path(__file__).resolve().parents[1]
FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}  # data=table's default
TOLERANCE = {"acc": 0.01, "r2": 0.02}


def _sklearn(loader: Callable, **kwargs) -> pd.DataFrame:
    return loader(as_frame=True, **kwargs).frame


def _cars() -> pd.DataFrame:
    """vega_datasets' cars (the UCI auto-mpg table): text origin, missing horsepower and
    mpg; the car's name (an identifier) dropped, the model year as a number."""
    cars = local_data.cars().drop(columns=["Name"])
    return cars.assign(Year=cars["Year"].dt.year)


def _star98() -> pd.DataFrame:
    """statsmodels' star98: the share of a school's pupils above the national median."""
    data = sm.datasets.star98.load_pandas().data
    share = data["NABOVE"] / (data["NABOVE"] + data["NBELOW"])
    return data.drop(columns=["NABOVE", "NBELOW"]).assign(share_above=share)


# name: (frame, target column, task, metric)
TABLES: dict[str, tuple[Callable[[], pd.DataFrame], str, str, str]] = {
    "cancer": (lambda: _sklearn(load_breast_cancer), "target", "classification", "acc"),
    "wine": (lambda: _sklearn(load_wine), "target", "classification", "acc"),
    "diabetes": (lambda: _sklearn(load_diabetes, scaled=False), "target", "regression", "r2"),
    "penguins_species": (palmerpenguins.load_penguins, "species", "classification", "acc"),
    "penguins_mass": (palmerpenguins.load_penguins, "body_mass_g", "regression", "r2"),
    "cars_mpg": (_cars, "Miles_per_Gallon", "regression", "r2"),
    "cars_origin": (_cars, "Origin", "classification", "acc"),
    "anes96_vote": (lambda: sm.datasets.anes96.load_pandas().data, "vote", "classification", "acc"),
    "star98_share": (_star98, "share_above", "regression", "r2"),
}


def write_table(name: str, folder: Path) -> tuple[Path, pd.DataFrame]:
    load, target, _, _ = TABLES[name]
    frame = load().dropna(subset=[target]).reset_index(drop=True)
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path, pd.read_csv(path)  # the baselines read what hlt reads


def _is_text(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]


def baselines(frame: pd.DataFrame, target: str, task: str, split_seed: int) -> dict[str, float]:
    """Test scores of HistGradientBoosting and of the scaled linear model, and their
    scores on hlt's validation rows (``hgb_val``, ``linear_val``)."""
    rows = split_indices(len(frame), FRACTIONS, split_seed)
    inputs = frame.drop(columns=[target])
    text = _is_text(inputs)
    inputs = inputs.astype({c: "category" for c in text})
    x_train, y_train = inputs.iloc[rows["train"]], frame[target].iloc[rows["train"]]
    classify = task == "classification"
    boosting = (HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor)(
        categorical_features="from_dtype", random_state=0
    )
    encode = ColumnTransformer(
        [
            (
                "numbers",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                make_column_selector(dtype_include="number"),
            ),
            (
                "text",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                make_column_selector(dtype_include="category"),
            ),
        ]
    )
    linear = make_pipeline(encode, LogisticRegression(max_iter=5000) if classify else Ridge())
    score = accuracy_score if classify else r2_score
    scores = {}
    for name, model in (("hgb", boosting), ("linear", linear)):
        model.fit(x_train, y_train)
        for split, suffix in (("test", ""), ("val", "_val")):
            y_true, x = frame[target].iloc[rows[split]], inputs.iloc[rows[split]]
            scores[name + suffix] = float(score(y_true, model.predict(x)))
    return scores


def hlt(path: Path, target: str, task: str, split_seed: int, run_dir: Path, args) -> dict:
    command = [
        sys.executable, str(ROOT / "apps" / "trainer"),
        "data=table", f"data.path={path}", f"data.target={target}", f"task={task}",
        f"model={args.model}", f"data.split_seed={split_seed}", f"hydra.run.dir={run_dir}",
        "print_config=false", "trainer.enable_progress_bar=false", *args.overrides,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    record = json.loads((run_dir / "results.json").read_text())
    return {**record, "wall_s": time.perf_counter() - start}


def summary(results: list[dict]) -> dict:
    """Per table (mean over split seeds) and the goals."""
    tables = {}
    for name in dict.fromkeys(r["table"] for r in results):
        mine = [r for r in results if r["table"] == name]
        metric = mine[0]["metric"]
        means = {
            k: float(np.mean([r[k] for r in mine]))
            for k in ("hlt", "hgb", "linear", "hlt_val", "hgb_val", "linear_val", "hlt_val_loss")
        }
        gap = means["hlt"] - means["hgb"]
        tables[name] = {
            "metric": metric,
            **{k: round(v, 4) for k, v in means.items()},
            "gap_to_hgb": round(gap, 4),
            "within_tolerance_of_hgb": gap >= -TOLERANCE[metric.split("/")[-1]],
            "not_below_linear": means["hlt"] >= means["linear"],
        }
    gaps = [t["gap_to_hgb"] for t in tables.values()]
    return {
        "tables": tables,
        "mean_val_score": round(float(np.mean([t["hlt_val"] for t in tables.values()])), 4),
        "mean_val_gap_to_hgb": round(
            float(np.mean([t["hlt_val"] - t["hgb_val"] for t in tables.values()])), 4
        ),
        "mean_gap_to_hgb": round(float(np.mean(gaps)), 4),
        "goal_mean_gap_met": float(np.mean(gaps)) >= 0,
        "goal_never_below_linear_met": all(t["not_below_linear"] for t in tables.values()),
        "goal_each_within_tolerance_met": all(
            t["within_tolerance_of_hgb"] for t in tables.values()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--split-seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--model", default="tabm", help="hlt's model= option")
    parser.add_argument("--overrides", nargs="*", default=[], help="more hlt overrides")
    args = parser.parse_args()
    results = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tables:
            _, target, task, metric = TABLES[name]
            path, frame = write_table(name, Path(tmp))
            for seed in args.split_seeds:
                record = hlt(path, target, task, seed, Path(tmp) / f"{name}-{seed}", args)
                theirs = baselines(frame, target, task, seed)
                results.append(
                    {
                        "table": name,
                        "rows": len(frame),
                        "split_seed": seed,
                        "metric": f"test/{metric}",
                        "hlt": round(record[f"test/{metric}"], 4),
                        **{k: round(v, 4) for k, v in theirs.items()},
                        "hlt_val": round(record[f"val/{metric}"], 4),
                        "hlt_val_loss": round(record["val/loss"], 4),
                        "best_epoch": record["best_epoch"],
                        "hlt_wall_s": round(record["wall_s"], 1),
                    }
                )
                print(json.dumps(results[-1]), file=sys.stderr)
    report = {
        "model": args.model,
        "overrides": args.overrides,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.perf_counter() - start, 1),
        **summary(results),
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
