"""What a user reads: the default run's output in a pipe (nothing cut, nothing twice, no
avoidable warning, a final block), app.log of a good and a failed run, the records
(tags, the reproducing command, versions) in results.json, and the learning curves."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import rich.console
from omegaconf import OmegaConf

from helpers import QUICK, REPO, compose_run, trainer
from hlt_core.jobs import sweeps
from hlt_core.results import console, plots
from hlt_core.run import run


def test_the_config_tree_wraps_long_values_instead_of_cutting_them(monkeypatch):
    value = "/a/very/long/folder/name/" * 8 + "checkpoints"
    out = io.StringIO()
    monkeypatch.setattr(console.rich, "print", rich.console.Console(file=out, width=60).print)
    console.print_config_tree(OmegaConf.create({"paths": {"dirpath": value}}))
    squeezed = re.sub(r"[\s│├└─]", "", out.getvalue())
    assert value in squeezed


@pytest.mark.cli
def test_a_default_run_in_a_pipe_prints_each_line_once_and_ends_with_a_block(tmp_path):
    run_dir = tmp_path / "run"
    done = trainer("trainer.max_epochs=1", "tags=[smoke,ci]", f"hydra.run.dir={run_dir}", cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""  # no duplicated log lines on stderr, no avoidable warning
    # progress in a pipe: a line per epoch with its numbers, no bar refreshes
    assert "\r" not in done.stdout and "%|" not in done.stdout and "it/s" not in done.stdout
    (progress,) = [
        line for line in done.stdout.splitlines() if "[hlt_core.training.progress]" in line
    ]
    assert re.search(r"epoch 0 done: step 100, \d+ samples/s, .*train/loss 0\.\d+", progress)
    assert "val/loss 0." in progress
    messages = [line for line in done.stdout.splitlines() if line.startswith("[")]
    bodies = [line.split("] - ", 1)[-1] for line in messages]
    assert not any("Tip:" in body or "Warning" in body for body in bodies)
    assert "Total FLOPs: 0 " not in done.stdout  # the summary sees a real example input
    assert f"{run_dir}/checkpoints" in done.stdout  # dirpath whole in an 80-column pipe
    assert "run finished" in done.stdout and f"run folder: {run_dir}" in done.stdout
    log = (run_dir / "app.log").read_text()
    assert "run finished" in log and "test/acc:" in log and "best checkpoint:" in log
    record = json.loads((run_dir / "results.json").read_text())
    assert record["tags"] == "smoke, ci"
    assert record["command"].startswith("uv run apps/trainer trainer.max_epochs=1 ")
    assert "'tags=[smoke,ci]'" in record["command"]  # quoted for a shell
    assert {"version/hlt-core", "version/hlt-data", "version/torch"} <= set(record)


@pytest.mark.cli
def test_a_failed_run_says_so_in_its_folder_and_its_log(tmp_path):
    run_dir = tmp_path / "run"
    done = trainer(
        "data=table", f"data.path={tmp_path / 'nope.csv'}", "data.target=y",
        f"hydra.run.dir={run_dir}", cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: data.path=") and "nope.csv" in line
    record = json.loads((run_dir / "results.json").read_text())
    assert record["status"] == "failed" and "nope.csv" in record["error"]
    assert line in Path(run_dir / "app.log").read_text()


def test_curve_panels_put_losses_and_each_metric_apart_with_both_splits():
    history = [
        {"epoch": 0, "step": 10, "train/loss": 900.0, "val/loss": 2.0, "val/acc": 0.5},
        {"epoch": 1, "step": 20, "train/loss": 1.0, "train/acc": 0.9, "val/loss": 1.5},
    ]
    panels = plots.curve_panels(history)
    assert list(panels) == ["loss", "acc"]
    assert panels["loss"]["train"] == [(10, 900.0), (20, 1.0)]
    assert set(panels["acc"]) == {"train", "val"}
    assert plots.spans_orders(panels["loss"]) and not plots.spans_orders(panels["acc"])


@pytest.mark.parametrize("logger", ["none", "tensorboard"])
def test_the_learning_curve_is_drawn_whichever_logger(logger, run_dir):
    cfg = compose_run([*QUICK[1:], "trainer.max_epochs=2", f"logger={logger}"], run_dir)
    run(cfg)
    assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_the_learning_curve_draws_each_point_where_metrics_csv_logged_it(run_dir, monkeypatch):
    drawn: dict[str, dict[str, list]] = {}

    def capture(history, out):
        drawn.update(plots.curve_panels(history))
        return plots.learning_curve(history, out)

    monkeypatch.setattr("hlt_core.run.learning_curve", capture)
    overrides = [*QUICK[1:], "trainer.max_epochs=3", "trainer.limit_train_batches=4"]
    run(compose_run(overrides, run_dir))
    with (run_dir / "csv" / "metrics.csv").open() as handle:
        # training's rows: the best checkpoint's validation after fit logs as epoch 3
        logged = [row for row in csv.DictReader(handle) if row["epoch"] in ("0", "1", "2")]
    for panel, series in drawn.items():
        for split, points in series.items():
            key = f"{split}/{panel}"
            expected = [
                (int(row["step"]), float(row[key]), int(row["epoch"]))
                for row in logged
                if row.get(key)
            ]
            epochs = [epoch for *_, epoch in expected]
            assert epochs == [0, 1, 2], key  # every epoch, the last included
            assert points == [(step, value) for step, value, _ in expected], key
    assert set(drawn) >= {"loss", "acc"} and set(drawn["loss"]) == {"train", "val"}


def test_the_best_job_is_the_lowest_or_highest_as_the_config_says():
    rows = [
        {"job": "0", "val/loss": 0.5, "val/loss_best": 0.2, "test/acc": 0.8},
        {"job": "1", "val/loss": 0.3, "val/loss_best": 0.3, "test/acc": 0.7},
        {"job": "2", "status": "failed"},
    ]
    checkpoint = {"callbacks": {"model_checkpoint": {"monitor": "val/loss", "mode": "min"}}}
    grid = OmegaConf.create({**checkpoint, "hydra": {"sweeper": {"params": {}}}})
    optuna = OmegaConf.create({**checkpoint, "hydra": {"sweeper": {"direction": "maximize"}}})
    assert sweeps.metric_direction(grid, "val/loss") == "min"
    assert sweeps.metric_direction(grid, "val/loss_best") == "min"
    assert sweeps.metric_direction(grid, "test/acc") is None  # no name is guessed at
    assert sweeps.metric_direction(optuna, "test/acc") == "max"
    assert plots.best_job(rows, "val/loss", "min") == "1"
    assert plots.best_job(rows, "val/loss_best", "min") == "0"
    assert plots.best_job(rows, "test/acc", "max") == "0"
    assert plots.best_job(rows, "test/acc", None) is None


def _sweep_rows():
    fixed = "uv run apps/trainer trainer.max_epochs=3 'name=a b'"
    return [
        {"job": "0", "status": "ok", "val/loss": 0.3512,
         "command": f"{fixed} optimizer.lr=0.0123456789 model.hidden_dim=64"},
        {"job": "1", "status": "ok", "val/loss": 0.3021,
         "command": f"{fixed} optimizer.lr=0.2 model.hidden_dim=256"},
        {"job": "2", "status": "failed", "error": "boom [x]",
         "command": f"{fixed} optimizer.lr=0.5 model.hidden_dim=64"},
    ]  # fmt: skip


def test_the_sweep_table_shows_swept_values_whole_and_fixed_ones_once(tmp_path, capsys):
    from hlt_core.jobs import sweeps

    assert sweeps.swept(_sweep_rows()) == (
        ["optimizer.lr", "model.hidden_dim"],
        {"trainer.max_epochs": "3", "name": "a b"},
    )
    for row in _sweep_rows():
        (tmp_path / row["job"] / ".hydra").mkdir(parents=True)
        if row["status"] == "ok":
            record = {k: v for k, v in row.items() if k != "job"}  # as a run writes it
            (tmp_path / row["job"] / "results.json").write_text(json.dumps(record))
    sweeps.summarize(tmp_path, "val/loss", "min")
    out = capsys.readouterr().out  # a pipe: no terminal width to fit
    assert out.count("trainer.max_epochs=3") == 1 and out.count("name=a b") == 1
    header = next(line for line in out.splitlines() if "optimizer.lr" in line)
    assert "model.hidden_dim" in header and "val/loss" in header  # swept keys are columns
    assert "0.0123456789" in out and "256" in out
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_the_comparison_axis_fits_close_values_and_names_jobs_by_swept_values():
    from hlt_core.jobs import sweeps

    low, high = plots.value_limits([0.30, 0.35, float("nan")])
    assert 0.29 <= low < 0.30 and 0.35 < high <= 0.36
    varying, _ = sweeps.swept(_sweep_rows())
    labels = [sweeps.job_label(row, varying) for row in _sweep_rows()]
    assert labels[1] == "1: optimizer.lr=0.2 model.hidden_dim=256"


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    from hlt_core.training.performance import ProgressBar
    from hlt_core.training.progress import ProgressLines, progress_bar

    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert isinstance(progress_bar(refresh_rate=10), ProgressBar)
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert isinstance(progress_bar(refresh_rate=10), ProgressLines)


def test_progress_lines_tell_the_step_rate_and_losses_within_and_after_each_epoch(run_dir, caplog):
    quick = [o for o in QUICK[1:] if "progress_bar" not in o]
    overrides = [*quick, "trainer.max_epochs=2", "callbacks.progress_bar.every_seconds=0"]
    with caplog.at_level("INFO", logger="hlt_core.training.progress"):
        run(compose_run(overrides, run_dir))
    lines = [r.getMessage() for r in caplog.records if r.name == "hlt_core.training.progress"]
    assert lines[0].startswith("epoch 0: step 1 (batch 1 of 3), ")
    assert "samples/s" in lines[0] and "train/loss_step " in lines[2]
    done = [line for line in lines if " done: " in line]
    assert [line.split(":")[0] for line in done] == ["epoch 0 done", "epoch 1 done"]
    assert all("train/loss " in line and "val/loss " in line for line in done)
    assert len(lines) == 2 * 3 + 2


def test_a_mixed_precision_run_warns_nothing_about_its_model_summary(run_dir, recwarn):
    overrides = [*QUICK[1:], "trainer.precision=bf16-mixed"]
    run(compose_run(overrides, run_dir))
    assert not [w for w in recwarn if "model summary" in str(w.message)]
