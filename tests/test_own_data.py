"""Own data through the documented configs (`data=table|fasta|npy`), on files the tests
write: facts filled from the data, normalisation fitted on train only, labels as names,
padding never scored, one story in results.json, and bad data named before training."""

from __future__ import annotations

import csv as csv_module
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.datasets import load_iris

from helpers import QUICK, REPO, compose_run
from hlt_core.composing.data_facts import build_datamodule, check_filled, fill_dims
from hlt_core.errors import UserError
from hlt_core.run import run
from hlt_data import (
    DataConfigError,
    FastaDataModule,
    FileDataModule,
    NpyDataModule,
    TableDataModule,
    TableReader,
)
from hlt_data.batch import INPUTS, TARGETS
from hlt_data.splits import split_indices

SHORT = [*QUICK[1:], "trainer.max_epochs=2"]  # QUICK without its max_epochs
FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def write_iris(path: Path) -> Path:
    """scikit-learn's iris with its class names (strings) as the target column."""
    iris = load_iris(as_frame=True)
    frame = iris.frame
    frame["target"] = [iris.target_names[i] for i in iris.target]
    frame.to_csv(path, index=False)
    return path


def write_regression(path: Path, rows: int = 300) -> Path:
    """Whole-number targets in large units: a regression that used to be read as classes."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(rows, 4)) * [1, 10, 100, 1000] + [0, 5, 50, 500]
    target = np.round(200 + 30 * features[:, 0] + 3 * features[:, 1] + rng.normal(size=rows))
    lines = ["a,b,c,d,target"] + [
        ",".join(f"{v:.4f}" for v in row) + f",{int(t)}"
        for row, t in zip(features, target, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_fasta(path: Path, records: int, labelled: bool, seed: int = 0) -> Path:
    """Uniformly random DNA of mixed lengths (20 to 60 bases)."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(records):
        sequence = "".join(rng.choice(list("ACGT"), size=int(rng.integers(20, 61))))
        label = f" label={'yes' if sequence.count('A') > len(sequence) / 4 else 'no'}"
        lines += [f">r{i}{label if labelled else ''}", sequence]
    path.write_text("\n".join(lines) + "\n")
    return path


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


# --- 1. data facts flow one way -------------------------------------------------------


def test_the_run_fills_model_and_task_sizes_from_the_data(tmp_path, run_dir):
    csv = write_iris(tmp_path / "iris.csv")
    cfg = compose_run(["data=table", f"data.path={csv}", "data.target=target"], run_dir)
    assert "dims" not in cfg.data  # nothing typed by hand
    filled = fill_dims(cfg, build_datamodule(cfg.data))
    assert filled["input_dim"] == 4 and filled["num_classes"] == 3
    assert cfg.model.input_dim == 4 and cfg.task.num_classes == 3
    check_filled(cfg)


def test_a_size_the_data_cannot_state_fails_naming_the_key(tmp_path, run_dir):
    csv = write_iris(tmp_path / "iris.csv")
    overrides = ["data=table", f"data.path={csv}", "data.target=target", "model=transformer"]
    cfg = compose_run(overrides, run_dir)
    fill_dims(cfg, build_datamodule(cfg.data))
    message = r"model\.vocab_size reads data\.dims\.vocab_size, which data=.* does not state"
    with pytest.raises(UserError, match=message):
        check_filled(cfg)


def test_a_missing_path_is_one_line_naming_the_key(run_dir):
    cfg = compose_run(["data=table", "data.target=y"], run_dir)
    with pytest.raises(UserError, match=r"^data\.path is required"):
        run(cfg)
    assert not (run_dir / "checkpoints").exists()


# --- 2-4. ready configs end to end; normalisation; labels -----------------------------


def test_table_classification_with_string_labels_end_to_end(tmp_path, run_dir):
    csv = write_iris(tmp_path / "iris.csv")
    overrides = ["data=table", f"data.path={csv}", "data.target=target", "predict=true"]
    cfg = compose_run([*overrides, *SHORT], run_dir)
    metrics = run(cfg)
    record = results(run_dir)
    assert record["labels"] == "setosa, versicolor, virginica"
    assert record["name"] == "table" and "test/acc" in metrics
    checkpoint = torch.load(record["best_checkpoint"], weights_only=True)
    labels = checkpoint["hlt_data_facts"]["labels"]
    assert labels == ["setosa", "versicolor", "virginica"]
    assert checkpoint["hlt_config"]["data"]["dims"]["num_classes"] == 3
    assert len(checkpoint["hlt_data_facts"]["feature_mean"]) == 4
    exported = json.loads((run_dir / "export" / "data.json").read_text())
    assert exported["labels"] == labels and exported["dims"]["input_dim"] == 4
    assert exported["feature_std"] == checkpoint["hlt_data_facts"]["feature_std"]
    # the predictions table: row ids, label names, one probability column per class
    with open(run_dir / "predictions.csv", newline="") as handle:
        rows = list(csv_module.DictReader(handle))
    assert list(rows[0]) == ["file", "row", "target", "prediction", *labels]
    test_rows = split_indices(150, FRACTIONS, 0)["test"]
    assert sorted(int(r["row"]) for r in rows) == sorted((test_rows + 1).tolist())  # data rows
    assert {r["file"] for r in rows} == {str(csv)}
    for r in rows:
        probabilities = [float(r[label]) for label in labels]
        assert abs(sum(probabilities) - 1) < 1e-5
        assert r["prediction"] == labels[probabilities.index(max(probabilities))]


def test_table_regression_reads_whole_numbers_as_real_values_in_their_units(tmp_path, run_dir):
    csv = write_regression(tmp_path / "reg.csv")
    overrides = ["data=table", f"data.path={csv}", "data.target=target", "task=regression"]
    cfg = compose_run([*overrides, *QUICK[1:], "trainer.max_epochs=30"], run_dir)
    run(cfg)
    dims = cfg.data.dims
    assert "num_classes" not in dims and dims.output_dim == 1
    assert 150 < dims.target_mean[0] < 250 and dims.target_std[0] > 10
    # metrics are in the target's units: a model this good has MAE far below the std
    record = results(run_dir)
    assert record["test/r2"] > 0.9, record
    assert record["test/mae"] < 0.3 * dims.target_std[0]


def test_feature_statistics_come_from_the_training_split_only(tmp_path):
    csv = write_regression(tmp_path / "reg.csv")
    dm = TableDataModule(csv, "target", target_type="real", split_fractions=FRACTIONS)
    raw = np.genfromtxt(csv, delimiter=",", skip_header=1)[:, :4]
    rows = split_indices(len(raw), FRACTIONS, 0)
    assert dm.scaler is not None
    assert np.allclose(dm.scaler.mean.numpy(), raw[rows["train"]].mean(axis=0), rtol=1e-5)
    assert not np.allclose(dm.scaler.mean.numpy(), raw.mean(axis=0), rtol=1e-5)
    val = torch.cat([b[INPUTS] for b in dm.val_dataloader()])
    expected = (raw[rows["val"]] - raw[rows["train"]].mean(0)) / raw[rows["train"]].std(0)
    assert np.allclose(val.numpy(), expected, atol=1e-4)
    off = TableDataModule(
        csv, "target", target_type="real", split_fractions=FRACTIONS, normalize=False
    )
    assert off.scaler is None and "target_mean" not in off.dims


def test_parquet_tables_read_like_csv(tmp_path):
    pq.write_table(pacsv.read_csv(write_iris(tmp_path / "iris.csv")), tmp_path / "iris.parquet")
    from_parquet = TableDataModule(tmp_path / "iris.parquet", "target")
    from_csv = TableDataModule(tmp_path / "iris.csv", "target")
    assert from_parquet.dims == from_csv.dims
    assert from_parquet.dims["labels"] == ["setosa", "versicolor", "virginica"]
    batch = next(iter(from_parquet.val_dataloader()))
    assert torch.allclose(batch[INPUTS], next(iter(from_csv.val_dataloader()))[INPUTS])


def test_npy_pairs_without_typed_sizes(tmp_path, run_dir):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "inputs.npy", rng.normal(size=(200, 5)).astype(np.float32))
    np.save(tmp_path / "targets.npy", (np.arange(200) % 3).astype(np.int64))
    cfg = compose_run(["data=npy", f"data.path={tmp_path}", *SHORT], run_dir)
    run(cfg)
    assert cfg.data.dims.input_dim == 5 and list(cfg.data.dims.labels) == ["0", "1", "2"]


def test_fasta_sequence_classification_with_labels_from_headers(tmp_path, run_dir):
    fasta = write_fasta(tmp_path / "seqs.fa", 200, labelled=True)
    overrides = ["data=fasta", f"data.path={fasta}", "model=transformer", "model.dim=16"]
    cfg = compose_run([*overrides, *SHORT], run_dir)
    run(cfg)
    assert cfg.data.dims.seq_len == 60 and cfg.data.dims.vocab_size == 7
    assert list(cfg.data.dims.labels) == ["no", "yes"]
    assert "test/acc" in results(run_dir)


def test_fasta_labels_from_a_csv_of_record_ids(tmp_path):
    fasta = write_fasta(tmp_path / "seqs.fa", 40, labelled=False)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"r{i},{'ab'[i % 2]}\n" for i in range(40)))
    dm = FastaDataModule(fasta, labels=labels, batch_size=4)
    assert dm.dims["labels"] == ["a", "b"] and dm.target_type == "class"


# --- 5. padding is never scored -------------------------------------------------------


def test_random_dna_of_mixed_lengths_scores_the_floor_perplexity_of_4(tmp_path, run_dir):
    """Uniform random DNA has perplexity 4 per base: scoring padding would go below it."""
    fasta = write_fasta(tmp_path / "dna.fa", 600, labelled=False)
    overrides = [
        "data=fasta",
        f"data.path={fasta}",
        "task=language_model",
        "model=transformer",
        "model.dim=32",
        "data.batch_size=32",
        "optimizer.lr=0.003",
        "trainer.max_epochs=4",
        "trainer.enable_progress_bar=false",
        "print_config=false",
    ]
    cfg = compose_run(overrides, run_dir)
    run(cfg)
    ppl = results(run_dir)["test/ppl"]
    print(f"random DNA perplexity {ppl:.4f} (floor 4)")
    assert abs(ppl - 4) / 4 < 0.03, ppl


# --- 6. results.json tells one story --------------------------------------------------


def test_results_describe_the_evaluated_best_checkpoint(tmp_path, run_dir):
    cfg = compose_run(
        [*QUICK[1:], "trainer.max_epochs=4", "optimizer.lr=0.5", "optimized_metric=val/loss"],
        run_dir,
    )  # a large lr makes later epochs worse than the best one
    returned = run(cfg)
    record = results(run_dir)
    checkpoint = torch.load(record["best_checkpoint"], weights_only=True)
    (state,) = [v for k, v in checkpoint["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert record["val/loss"] == pytest.approx(float(state["best_model_score"]), rel=1e-5)
    assert record["best_step"] == checkpoint["global_step"]
    assert record["evaluated_checkpoint"] == record["best_checkpoint"]
    assert returned["val/loss"] == record["val/loss"]


# --- 7. bad data: one line before training, naming file, row and column ----------------


GOOD = "".join(f"{i},{i % 2}\n" for i in range(20))  # rows of columns a,y (rows 1-20)
BAD_TABLES = {
    "missing target column": ("a,b\n" + GOOD, r"t\.csv: no target column 'y' \(data\.target"),
    "non-numeric feature": ("a,y\n" + GOOD + "x1,1\n", r"t\.csv row 21 column 'a': 'x1' is"),
    "infinite feature": ("a,y\n" + GOOD + "inf,1\n", r"t\.csv row 21 column 'a': inf \(infin"),
    "infinite target": ("a,y\n" + GOOD + "2,inf\n", r"t\.csv row 21 target: inf \(NaN or"),
    "target not a number": ("a,y\n" + GOOD + "5,high\n", r"row 21: target 'high' is not a"),
    "header only": ("a,y\n", r"t\.csv: no data rows"),
    "empty file": ("", r"t\.csv: empty file"),
    "short row": ("a,y\n" + GOOD + "1\n", r"t\.csv line 22: 1 cells but the header has 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_tables_are_named_before_training(case, tmp_path):
    text, message = BAD_TABLES[case]
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(DataConfigError, match=message):
        TableDataModule(tmp_path / "t.csv", "y", batch_size=2, target_type="real")


def test_a_label_unseen_in_training_names_value_file_and_row(tmp_path):
    for split, extra in (("train", ""), ("val", "7,zebra\n"), ("test", "")):
        rows = "".join(f"{i},{'ab'[i % 2]}\n" for i in range(6))
        (tmp_path / f"{split}.csv").write_text(f"x,y\n{rows}{extra}")
    files = {split: [tmp_path / f"{split}.csv"] for split in ("train", "val", "test")}
    with pytest.raises(DataConfigError, match=r"val\.csv row 7: label 'zebra' never occurs in"):
        FileDataModule(files, TableReader("y"), batch_size=2, target_type="class")


def test_files_whose_columns_disagree_and_empty_folders_are_named(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n" + "1,0\n" * 10)
    (tmp_path / "b.csv").write_text("z,y\n" + "1,0\n" * 10)
    with pytest.raises(DataConfigError, match=r"b\.csv: columns \['z'\], expected \['x'\]"):
        TableDataModule(tmp_path, "y", batch_size=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataConfigError, match=r"data\.path=.*empty: the folder has no \.csv"):
        TableDataModule(tmp_path / "empty", "y")


def test_fasta_characters_outside_the_alphabet_are_named(tmp_path):
    (tmp_path / "s.fa").write_text(">r1\nACGT\n>r2 label=1\nACXGT\n")
    with pytest.raises(DataConfigError, match=r"s\.fa record 'r2' position 3: 'X' is not in"):
        FastaDataModule(tmp_path / "s.fa", target_type="none")


def test_npy_inputs_of_strings_are_refused(tmp_path):
    np.save(tmp_path / "inputs.npy", np.array([["a", "b"]] * 10))
    np.save(tmp_path / "targets.npy", np.zeros(10))
    with pytest.raises(DataConfigError, match=r"inputs\.npy: inputs of dtype <U1 cannot be"):
        NpyDataModule(tmp_path)


# --- the documented command, as a user types it ----------------------------------------


@pytest.mark.cli
def test_the_documented_table_command_trains_and_a_bad_path_is_one_line(tmp_path):
    csv = write_iris(tmp_path / "iris.csv")
    app = str(REPO / "apps" / "trainer")
    common = ["print_config=false", "trainer.enable_progress_bar=false"]
    done = subprocess.run(
        [sys.executable, app, "data=table", f"data.path={csv}", "data.target=target",
         "task=classification", "trainer.max_epochs=3", f"hydra.run.dir={tmp_path / 'r'}",
         *common],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert results(tmp_path / "r")["labels"] == "setosa, versicolor, virginica"
    bad = subprocess.run(
        [sys.executable, app, "data=table", f"data.path={tmp_path / 'nope.csv'}",
         "data.target=target", f"hydra.run.dir={tmp_path / 'b'}", *common],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: data.path=")
    assert "nope.csv: no such file or folder" in bad.stderr


def test_complex_inputs_are_refused_and_any_label_values_become_classes(tmp_path):
    np.save(tmp_path / "inputs.npy", np.ones((10, 2), dtype=np.complex64))
    np.save(tmp_path / "targets.npy", np.zeros(10))
    with pytest.raises(DataConfigError, match=r"inputs of dtype complex64 cannot be trained on"):
        NpyDataModule(tmp_path)
    # negative or large label values are names in a vocabulary, never out-of-range indices
    np.save(tmp_path / "inputs.npy", np.random.default_rng(0).normal(size=(60, 2)))
    np.save(tmp_path / "targets.npy", np.array([-1, 7, 1000] * 20))
    dm = NpyDataModule(tmp_path, batch_size=8, target_type="class")
    assert dm.dims["num_classes"] == 3 and dm.dims["labels"] == ["-1", "7", "1000"]
    targets = torch.cat([b[TARGETS] for b in dm.val_dataloader()])
    assert set(targets.tolist()) <= {0, 1, 2}


# --- early stopping in the own-data recipes ---------------------------------------------


def test_own_data_recipes_stop_early_and_say_how_many_epochs_were_saved(tmp_path, run_dir, caplog):
    rng = np.random.default_rng(0)  # labels that are noise: val/loss soon stops improving
    rows = "".join(
        f"{a:.3f},{b:.3f},{int(rng.integers(2))}\n" for a, b in rng.normal(size=(200, 2))
    )
    (tmp_path / "noise.csv").write_text("a,b,y\n" + rows)
    overrides = ["data=table", f"data.path={tmp_path / 'noise.csv'}", "data.target=y",
                 *QUICK[1:], "trainer.max_epochs=40", "callbacks.early_stopping.patience=2",
                 "optimizer.lr=0.01", "logger=none"]  # fmt: skip
    with caplog.at_level("INFO", logger="hlt_core.run"):
        run(compose_run(overrides, run_dir))
    record = results(run_dir)
    assert record["stopped_early_epochs"] < 40
    assert record["epochs_saved"] == 40 - record["stopped_early_epochs"]
    assert record["best_epoch"] == record["stopped_early_epochs"] - 3  # patience 2
    assert f"early stopping: stopped after {record['stopped_early_epochs']} epochs" in caplog.text
    for data in ("table", "fasta", "npy"):
        cfg = compose_run([f"data={data}", "data.path=x", "callbacks.early_stopping=null"], run_dir)
        assert cfg.callbacks.early_stopping is None  # switched off
        cfg = compose_run([f"data={data}", "data.path=x"], run_dir)
        assert cfg.callbacks.early_stopping.monitor == "val/loss"
