"""The exported predictor: parity with the Lightning module (in a venv holding torch
alone), ``hlt predict`` on new CSV and FASTA files, streaming, and bad input."""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from build_tools import uv
from helpers import QUICK, compose_run
from hlt_core.composing.data_facts import build_datamodule
from hlt_core.composing.init_from import split_model_config
from hlt_core.contracts import INPUTS, MASK
from hlt_core.run import run
from hlt_core.training.module import TaskModule
from hlt_data import table_stream
from hlt_trainer.cli import main as hlt
from hlt_trainer.predict import tensor

LABELS = ["bird", "cat", "dog"]  # sorted: the vocabulary's order
QUICK_FIT = [*QUICK[1:], "trainer.max_epochs=2", "logger=none", "export_onnx=true"]


COLOURS = ["blue", "green", "red"]


def write_table(path: Path, rows: int, seed: int = 0) -> Path:
    """Three string classes told apart by features in large, shifted units, a text
    column and empty cells; files of another seed also hold a colour training never saw."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, size=rows)
    features = rng.normal(size=(rows, 3)) * [1, 100, 1000] + [0, 50, -500] + classes[:, None]
    colours = [*COLOURS, *(["violet"] if seed else [])]
    lines = ["a,b,c,colour,species"]
    for i, (row, k) in enumerate(zip(features, classes, strict=True)):
        cells = ["" if i % 9 == 4 else f"{v:.3f}" for v in row[:1]] + [f"{v:.3f}" for v in row[1:]]
        colour = colours[(k + i % 2) % len(colours)] if i % 7 else ""
        lines.append(",".join([*cells, colour, LABELS[k]]))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_fasta(path: Path, records: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(records):
        sequence = "".join(rng.choice(list("ACGT"), size=int(rng.integers(10, 25))))
        lines += [f">s{i} label={'rich' if sequence.count('A') > 5 else 'poor'}", sequence]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_npy(folder: Path, rows: int, width: int = 3) -> Path:
    """Float features and a real target around 1000 (in its own units)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(rows, width)).astype(np.float32)
    np.save(folder / "inputs.npy", inputs)
    np.save(folder / "targets.npy", (1000 + 50 * inputs[:, 0]).astype(np.float32))
    return folder


RUNS = {
    "mlp": lambda d: ["data=table", f"data.path={write_table(d / 'train.csv', 200)}",
                      "data.target=species", "predict=true", "task=classification"],
    "tabm": lambda d: ["data=table", f"data.path={write_table(d / 'train.csv', 200)}",
                       "data.target=species", "predict=true", "task=classification",
                       "model=tabm", "model.members=4", "model.hidden_dim=16"],
    "transformer": lambda d: ["data=fasta", f"data.path={write_fasta(d / 'train.fa', 200)}",
                              "model=transformer", "model.dim=16", "model.depth=1",
                              "model.heads=2", "task=classification"],
    "hyena": lambda d: ["data=fasta", f"data.path={write_fasta(d / 'train.fa', 200)}",
                        "model=hyena", "model.dim=16", "model.depth=1", "model.filter_dim=8",
                        "task=classification"],
    "npy": lambda d: ["data=npy", f"data.path={write_npy(d / 'arrays', 200)}",
                      "task=regression"],
}  # fmt: skip


class Runs(dict):
    """One short run per model type (classification; npy: MLP regression), exported,
    each trained when a test first asks for it."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.factory = factory

    def __missing__(self, name: str) -> Path:
        folder = self.factory.mktemp(name)
        run(compose_run([*RUNS[name](folder), *QUICK_FIT], folder / "run"))
        self[name] = folder / "run"
        return self[name]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory)


def lightning_predictions(run_dir: Path) -> dict[str, torch.Tensor]:
    """Raw inputs of the first test batch and the Lightning module's predictions on it
    (its datamodule normalises them), from the best checkpoint."""
    best = json.loads((run_dir / "results.json").read_text())["best_checkpoint"]
    checkpoint = torch.load(best, weights_only=True)
    cfg = OmegaConf.create(checkpoint["hlt_config"])
    datamodule = build_datamodule(cfg.data)
    model_config, _ = split_model_config(cfg.model)  # the run's init_from is not the model's
    module = TaskModule(instantiate(model_config), instantiate(cfg.task), optimizer=None)
    module.load_state_dict(checkpoint["state_dict"])
    dataset = datamodule.dataset("test")
    raw = datamodule.examples["test"].gather(dataset.rows_of((0, 0)))
    with torch.no_grad():
        expected = module.eval().predict_step(dataset[(0, 0)], 0)
    return {"expected": expected, **{k: raw[k] for k in (INPUTS, MASK) if k in raw}}


CHECK = textwrap.dedent(
    """
    import importlib.util, json, sys
    import torch
    for name in ("lightning", "hydra", "omegaconf", "torchmetrics", "safetensors",
                 "numpy", "hlt_core", "hlt_data", "hlt_models", "hlt_tasks"):
        if importlib.util.find_spec(name) is not None:
            raise SystemExit(f"{name} is importable in the torch-only venv")
    report = {}
    for name, export in json.loads(sys.argv[1]).items():
        ref = torch.load(f"{export}/ref.pt", weights_only=True)
        spec = json.load(open(f"{export}/model.json"))["predictor"]
        predictor = torch.export.load(f"{export}/{spec['file']}").module()
        args = [ref[key] for key in spec["inputs"]]
        out = predictor(*args)
        assert out.dtype == ref["expected"].dtype and out.shape == ref["expected"].shape
        report[name] = (out - ref["expected"]).abs().max().item()
        if "length" in spec["dynamic"]:  # a shorter length and another batch size run too
            assert predictor(*[a[:3, :7] for a in args]).shape[0] == 3
    print(json.dumps(report))
    """
)


def test_exported_predictors_equal_the_lightning_module_with_torch_alone(runs, tmp_path):
    exports = {}
    for name in RUNS:
        export = runs[name] / "export"
        torch.save(lightning_predictions(runs[name]), export / "ref.pt")
        exports[name] = str(export)
    spec = {n: json.loads((Path(e) / "model.json").read_text())["predictor"]
            for n, e in exports.items()}  # fmt: skip
    assert {s["format"] for s in spec.values()} == {"torch.export"}
    assert spec["transformer"]["dynamic"] == ["batch", "length"]
    assert spec["hyena"]["dynamic"] == ["batch"]  # torch.linspace fixes its length
    for table in ("mlp", "tabm"):
        assert spec[table]["inputs"] == [INPUTS] and spec[table]["outputs"] == "probabilities"

    venv = tmp_path / "venv"
    subprocess.run([uv(), "venv", str(venv), "--python", sys.executable, "-q"], check=True)
    python = venv / "bin" / "python"
    torch_version = importlib.metadata.version("torch").split("+")[0]
    subprocess.run(
        [uv(), "pip", "install", "-q", "--python", str(python), f"torch=={torch_version}"],
        check=True,
    )
    (tmp_path / "check.py").write_text(CHECK)
    done = subprocess.run(
        [str(python), str(tmp_path / "check.py"), json.dumps(exports)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    differences = json.loads(done.stdout.strip().splitlines()[-1])
    print("parity (max |exported - Lightning|):", differences)
    assert differences == {"mlp": 0.0, "tabm": 0.0, "transformer": 0.0, "hyena": 0.0, "npy": 0.0}


def test_onnx_predictors_agree_with_the_lightning_module_within_1e_5(runs):
    """The optional ONNX export (onnxruntime, CPU): float32 kernels differ from torch's,
    so parity is a tolerance, 1e-5 on probabilities and on standardised-then-rescaled
    values of order 1000 relative to their scale."""
    import onnxruntime

    for name in RUNS:
        export = runs[name] / "export"
        spec = json.loads((export / "model.json").read_text())["predictor"]["onnx"]
        ref = lightning_predictions(runs[name])
        session = onnxruntime.InferenceSession(export / spec["file"])
        (out,) = session.run(None, {key: ref[key].numpy() for key in spec["inputs"]})
        scale = ref["expected"].abs().max().clamp(min=1).item()
        difference = np.abs(out - ref["expected"].numpy()).max() / scale
        print(f"onnx {name}: max relative difference {difference:.2e}")
        assert difference <= 1e-5, name


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_hlt_predict_on_a_new_csv_gives_label_names_and_probabilities(runs, tmp_path, capsys):
    new = write_table(tmp_path / "new.csv", 40, seed=1)
    out = tmp_path / "out" / "p.csv"
    assert hlt(["predict", str(runs["mlp"]), str(new), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    rows = read_csv(out)
    assert list(rows[0]) == ["file", "row", "target", "prediction", *LABELS]
    assert [r["row"] for r in rows] == [str(row) for row in range(1, 41)]  # data rows
    assert {r["file"] for r in rows} == {str(new)}
    for r in rows:
        probabilities = [float(r[label]) for label in LABELS]
        assert abs(sum(probabilities) - 1) < 1e-6
        assert r["prediction"] == LABELS[int(np.argmax(probabilities))]


@pytest.mark.parametrize("model", ["mlp", "tabm"])
def test_hlt_predict_repeats_the_trainers_predictions_without_the_target(runs, tmp_path, model):
    """Same rows, same numbers as predict=true, through the export and saved statistics
    and column types (a text column, empty cells); the target column is not needed (and
    copied into the table when present). TabM: the mean of its members' probabilities."""
    trained = read_csv(runs[model] / "predictions.csv")
    source = Path(trained[0]["file"])
    lines = source.read_text().splitlines()
    species = {str(i): line.rsplit(",", 1)[1] for i, line in enumerate(lines[1:], 1)}
    assert all(r["target"] == species[r["row"]] for r in trained)
    no_target = tmp_path / "features.csv"
    no_target.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    for i, new in enumerate((source, no_target)):
        out = tmp_path / f"p{i}.csv"
        assert hlt(["predict", str(runs[model] / "export"), str(new), "--out", str(out)]) == 0
        by_row = {r["row"]: r for r in read_csv(out)}
        assert ("target" in next(iter(by_row.values()))) == (new == source)
        for r in trained:
            assert by_row[r["row"]]["prediction"] == r["prediction"]
            assert [float(by_row[r["row"]][k]) for k in LABELS] == [float(r[k]) for k in LABELS]


def test_hlt_predict_on_fasta_names_records(runs, tmp_path, monkeypatch):
    new = write_fasta(tmp_path / "new.fa", 30, seed=2)
    monkeypatch.chdir(tmp_path)
    assert hlt(["predict", str(runs["hyena"]), str(new)]) == 0
    rows = read_csv(tmp_path / "predictions.csv")  # the default: the current folder
    assert list(rows[0]) == ["file", "row", "prediction", "poor", "rich"]
    assert [r["row"] for r in rows] == [f"s{i}" for i in range(30)]
    assert {r["prediction"] for r in rows} <= {"poor", "rich"}


def test_hlt_predict_streams_batches_into_parquet(runs, tmp_path):
    new = write_table(tmp_path / "big.csv", 300, seed=3)
    whole, streamed = tmp_path / "whole.parquet", tmp_path / "streamed.parquet"
    assert hlt(["predict", str(runs["mlp"]), str(new), "--out", str(whole)]) == 0
    args = ["predict", str(runs["mlp"]), str(new), "--out", str(streamed), "--batch-size", "32"]
    assert hlt(args) == 0
    table = pq.read_table(streamed)
    assert table.num_rows == 300
    assert table.column_names[:4] == ["file", "row", "target", "prediction"]
    assert pq.ParquetFile(streamed).metadata.num_row_groups == 10  # one per batch
    assert table.equals(pq.read_table(whole))


@pytest.mark.parametrize(
    ("model", "content", "message"),
    [
        ("mlp", "a,b,colour,species\n1,2,red,cat\n", r"bad\.csv: no feature column 'c'"),
        ("mlp", "a,b,c,colour\n1,2,3,red\n4,5\n", r"bad\.csv line 3: 2 cells but the header"),
        ("mlp", "a,b,c,colour\n1,2,3,red\n4,x,6,red\n", r"bad\.csv row 2 column 'b': 'x' is not"),
        ("transformer", ">ok\nACGT\n>odd\nACXT\n", r"bad\.fa record 'odd' position 3: 'X'"),
    ],
)
def test_bad_input_is_one_line_naming_file_and_row(runs, tmp_path, capsys, model, content, message):
    bad = tmp_path / ("bad.fa" if model != "mlp" else "bad.csv")
    bad.write_text(content)
    out = tmp_path / "p.csv"
    error = refused(capsys, str(runs[model]), str(bad), "--out", str(out))
    assert re.search(message, error), error
    assert not out.exists()  # nothing half-written


def test_hlt_predict_on_npy_gives_regression_values_in_original_units(runs, tmp_path):
    new = write_npy(tmp_path / "new", 20)
    (new / "targets.npy").unlink()  # new data has no targets
    out = tmp_path / "p.csv"
    assert hlt(["predict", str(runs["npy"]), str(new), "--out", str(out), "--batch-size", "7"]) == 0
    rows = read_csv(out)
    assert list(rows[0]) == ["file", "row", "prediction"]
    assert [r["row"] for r in rows] == [str(i) for i in range(20)]
    assert 500 < np.mean([float(r["prediction"]) for r in rows]) < 1500  # not standardised


def test_a_batch_of_a_read_only_file_becomes_a_tensor_of_its_own():
    mapped = np.zeros((4, 3), dtype=np.float32)
    mapped.flags.writeable = False  # as a slice of a memory-mapped .npy
    batch = tensor(mapped[1:3])
    batch.add_(1)  # torch would have warned and written into the file's memory
    assert batch.dtype == torch.float32 and not mapped.any()


def test_wrong_width_npy_and_missing_paths_are_one_line(runs, tmp_path, capsys):
    wide = write_npy(tmp_path / "wide", 10, width=5)
    assert hlt(["predict", str(runs["npy"]), str(wide / "inputs.npy")]) == 2
    error = capsys.readouterr().err
    assert "inputs.npy: inputs of shape (5,) per row" in error and "rows of 3 features" in error
    assert hlt(["predict", str(tmp_path), str(tmp_path)]) == 2
    assert "neither a run folder nor an export" in capsys.readouterr().err
    assert hlt(["predict", str(runs["mlp"]), str(tmp_path / "none.csv")]) == 2
    assert "none.csv: no such file or folder" in capsys.readouterr().err


def refused(capsys, *args: str) -> str:
    """``hlt predict *args``: exit 2 and one line on stderr, returned."""
    capsys.readouterr()  # what came before (a fixture's training) is not this command's
    assert hlt(["predict", *args]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: "), error
    return error


def export_copy(runs, tmp_path: Path) -> Path:
    """A copy of the MLP run's export, to damage."""
    return Path(shutil.copytree(runs["mlp"] / "export", tmp_path / "export"))


class Payload:
    """Once unpickled, creates ``marker``: what a crafted archive carries instead of a tensor."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def pickled(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save(Payload(marker), buffer)
    return buffer.getvalue()


def rewrite_archive(path: Path, change) -> None:
    """Rewrite the .pt2 at ``path``: ``change(name, data)`` gives each entry's new bytes
    (``name`` inside the archive's top folder); extra entries go in ``change.extra``."""
    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    top = next(iter(entries)).split("/")[0]
    with zipfile.ZipFile(path, "w") as archive:
        for filename, data in entries.items():
            archive.writestr(filename, change(filename.split("/", 1)[1], data))
        for name, data in getattr(change, "extra", {}).items():
            archive.writestr(f"{top}/{name}", data)


def edit_json(name: str, data: bytes, wanted: str, edit) -> bytes:
    if name != wanted:
        return data
    document = json.loads(data)
    edit(document)
    return json.dumps(document).encode()


def pickled_first(config: str, records: str):
    """Mark the first entry of ``config`` use_pickle and put the payload in its record."""

    def change(marker: Path):
        def rewrite(name: str, data: bytes) -> bytes:
            document = json.loads(data) if name == config else None
            if document is not None:
                first = next(iter(document["config"].values()))
                first["use_pickle"] = True
                return json.dumps(document).encode()
            return pickled(marker) if name == f"{records}_0" else data

        return rewrite

    return change


def in_program(edit):
    def change(marker: Path):
        return lambda name, data: edit_json(
            name, data, "models/model.json", lambda program: edit(program, marker)
        )

    return change


def guard(program, marker):
    program["guards_code"] = [f"__import__('os').system('touch {marker}') == 0"]


def shape_expression(program, marker):
    for value in program["graph_module"]["graph"]["tensor_values"].values():
        for size in value["sizes"]:
            if "as_expr" in size:
                size["as_expr"]["expr_str"] += f" + 0*__import__('os').system('touch {marker}')"
                return


def operator(target):
    def edit(program, marker):
        program["graph_module"]["graph"]["nodes"][0]["target"] = target

    return edit


def shared_library(marker: Path):
    def rewrite(name: str, data: bytes) -> bytes:
        return data

    rewrite.extra = {"data/aotinductor/model/model.so": b"\x7fELF"}  # type: ignore[attr-defined]
    return rewrite


def sample_inputs(marker: Path):
    return lambda name, data: pickled(marker) if name == "data/sample_inputs/model.pt" else data


@pytest.mark.parametrize(
    ("craft", "message"),
    [
        (pickled_first("data/weights/model_weights_config.json", "data/weights/weight"),
         r"'model\.net\.0\.weight' is stored as a pickle \(use_pickle\), which can run code"),
        (pickled_first("data/constants/model_constants_config.json", "data/constants/tensor"),
         r"'feature_mean' is stored as a pickle"),
        (in_program(guard), r"the guard .* is not a comparison of sizes"),
        (in_program(shape_expression), r"the shape expression .* is not a plain size expression"),
        (in_program(operator("torch.os.system")), r"the graph calls 'torch\.os\.system'"),
        (in_program(operator("torch.ops.aten.from_file.default")), r"calls 'torch\.ops\.aten"),
        (shared_library, r"holds '.*/data/aotinductor/model/model\.so', not part"),
    ],
    ids=["weight", "constant", "guard", "shape", "operator", "file-operator", "shared-library"],
)  # fmt: skip
def test_a_crafted_predictor_is_refused_before_anything_runs(
    runs, tmp_path, capsys, craft, message
):
    """The archive is checked before torch reads it: the payload never runs, nothing is
    written, and the line names the archive and what was refused."""
    export, marker = export_copy(runs, tmp_path), tmp_path / "marker"
    rewrite_archive(export / "predictor.pt2", craft(marker))
    out = tmp_path / "p.csv"
    error = refused(
        capsys, str(export), str(write_table(tmp_path / "new.csv", 5)), "--out", str(out)
    )
    assert f"{export / 'predictor.pt2'}: refused, " in error
    assert re.search(message, error), error
    assert not marker.exists() and not out.exists()


def test_pickled_sample_inputs_are_never_read(runs, tmp_path, capsys):
    """The archive's sample inputs are a pickle hlt predict has no use for: emptied, not
    loaded, so predictions are made and the payload never runs."""
    export, marker = export_copy(runs, tmp_path), tmp_path / "marker"
    rewrite_archive(export / "predictor.pt2", sample_inputs(marker))
    out = tmp_path / "p.csv"
    assert (
        hlt(["predict", str(export), str(write_table(tmp_path / "new.csv", 5)), "--out", str(out)])
        == 0
    )
    assert len(read_csv(out)) == 5 and not marker.exists()


def damage(export: Path, name: str, edit) -> None:
    """Rewrite ``export/name`` (JSON) with ``edit(document)``, or replace its text."""
    path = export / name
    if isinstance(edit, str):
        path.write_text(edit)
    else:
        document = json.loads(path.read_text())
        edit(document)
        path.write_text(json.dumps(document))


def set_in(*keys_and_value):
    *keys, value = keys_and_value

    def edit(document):
        for key in keys[:-1]:
            document = document[key]
        if value is DELETE:
            del document[keys[-1]]
        else:
            document[keys[-1]] = value

    return edit


DELETE = object()


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("model.json", "{not json", r"model\.json: not a readable JSON file"),
        ("model.json", "[1, 2]", r"model\.json: holds a JSON list, not an object"),
        ("model.json", set_in("predictor", "inputs", DELETE),
         r"model\.json: predictor\.inputs must be \[inputs\] or \[inputs, mask\]"),
        ("model.json", set_in("predictor", "inputs", [INPUTS, MASK]),
         r"the predictor takes a mask, but data\.json's reader gives none"),
        ("model.json", set_in("predictor", "file", "../../../etc/hostname"),
         r"predictor\.file='\.\./\.\./\.\./etc/hostname' is not a file name in the export"),
        ("model.json", set_in("predictor", "file", "/etc/hostname"),
         r"predictor\.file='/etc/hostname' is not a file name in the export"),
        ("model.json", set_in("predictor", "file", "gone.pt2"),
         r"gone\.pt2: no such file \(named by model\.json's predictor\.file\)"),
        ("model.json", set_in("predictor", "format", "torchscript"),
         r"predictor format 'torchscript': hlt predict loads only torch\.export"),
        ("data.json", "", r"data\.json: not a readable JSON file"),
        ("data.json", set_in("reader", "columns", [{"name": "a", "kind": "picture"}]),
         r"data\.json: reader is damaged \(a saved column of unknown kind"),
        ("data.json", set_in("labels", "cat"), r"data\.json: labels must be a list of class names"),
        ("data.json", set_in("reader", "delimiter", ";;"),
         r"data\.json: reader\.delimiter=';;' is not one character"),
    ],
    ids=["not-json", "list", "no-inputs", "mask", "dotdot", "absolute", "missing-pt2",
         "torchscript", "empty-data", "bad-column", "labels", "delimiter"],
)  # fmt: skip
def test_damaged_export_metadata_is_one_line_naming_the_file(
    runs, tmp_path, capsys, name, edit, message
):
    export = export_copy(runs, tmp_path)
    damage(export, name, edit)
    error = refused(capsys, str(export), str(write_table(tmp_path / "new.csv", 5)))
    assert re.search(message, error), error


@pytest.mark.parametrize("how", ["truncated", "missing", "symlink-out"])
def test_a_damaged_missing_or_escaping_predictor_file_is_one_line(runs, tmp_path, capsys, how):
    export = export_copy(runs, tmp_path)
    archive = export / "predictor.pt2"
    if how == "truncated":
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
        message = r"predictor\.pt2: not a readable \.pt2 archive \(truncated or damaged\?\)"
    elif how == "missing":
        archive.unlink()
        message = r"predictor\.pt2: no such file \(named by model\.json's predictor\.file\)"
    else:
        archive.unlink()
        archive.symlink_to(write_table(tmp_path / "secret.csv", 2))
        message = r"predictor\.file='predictor\.pt2' leads outside the export"
    error = refused(capsys, str(export), str(write_table(tmp_path / "new.csv", 5)))
    assert re.search(message, error), error


def test_the_output_never_replaces_a_file_unasked_nor_an_input(runs, tmp_path, capsys):
    new = write_table(tmp_path / "new.csv", 5)
    before = new.read_text()
    out = tmp_path / "p.csv"
    out.write_text("kept\n")
    assert "exists; pass --overwrite to replace it" in refused(
        capsys, str(runs["mlp"]), str(new), "--out", str(out)
    )
    assert out.read_text() == "kept\n"
    assert hlt(["predict", str(runs["mlp"]), str(new), "--out", str(out), "--overwrite"]) == 0
    assert len(read_csv(out)) == 5
    link = tmp_path / "link.csv"
    link.hardlink_to(new)
    for target in (new, runs["mlp"] / "export" / "model.json", link):
        error = refused(capsys, str(runs["mlp"]), str(new), "--out", str(target), "--overwrite")
        assert f"--out {target} is one of the inputs" in error
    assert new.read_text() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "-1"], "--batch-size -1: must be a whole number of rows, 1 or more"),
        (["--batch-size", "0"], "--batch-size 0: must be a whole number"),
        (["--batch-size", "2.5"], "--batch-size 2.5: must be a whole number"),
        (["--out", "{tmp}"], "--out {tmp} is a folder; name a file"),
        (["--out", "{tmp}/new.csv/p.csv"], "{tmp}/new.csv is not a folder"),
    ],
    ids=["negative", "zero", "fraction", "folder", "under-a-file"],
)  # fmt: skip
def test_bad_batch_size_and_out_are_one_line(runs, tmp_path, capsys, args, message):
    new = write_table(tmp_path / "new.csv", 5)
    args = [a.format(tmp=tmp_path) for a in args]
    error = refused(capsys, str(runs["mlp"]), str(new), *args)
    assert message.format(tmp=tmp_path) in error


@pytest.mark.parametrize("cell", ["inf", "-inf"])
def test_infinite_features_are_one_line_naming_file_row_and_column(runs, tmp_path, capsys, cell):
    bad = tmp_path / "bad.csv"
    bad.write_text(f"a,b,c,colour\n1,2,3,red\n4,{cell},6,red\n")
    out = tmp_path / "p.csv"
    error = refused(capsys, str(runs["mlp"]), str(bad), "--out", str(out))
    assert f"bad.csv row 2 column 'b': {cell} (infinite values" in error
    assert not out.exists()


def test_nan_features_in_a_table_are_filled_as_training_filled_them(runs, tmp_path):
    """A table's missing cells (NaN, NA, empty) follow training's missing-value policy:
    the training median and the missing indicator (tests/test_predict's table has them)."""
    new = tmp_path / "new.csv"
    new.write_text("a,b,c,colour\nnan,2,3,red\n,2,3,red\nNA,2,3,red\n")
    out = tmp_path / "p.csv"
    assert hlt(["predict", str(runs["mlp"]), str(new), "--out", str(out)]) == 0
    rows = read_csv(out)
    assert len(rows) == 3 and rows[0]["bird"] == rows[1]["bird"] == rows[2]["bird"]


@pytest.fixture
def small_parts(monkeypatch):
    """Tables read 16 rows of a Parquet file or 512 bytes of a CSV file at a time."""
    monkeypatch.setattr(table_stream, "READ_ROWS", 16)
    monkeypatch.setattr(table_stream, "CSV_BLOCK", 512)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_hlt_predict_streams_a_table_a_part_at_a_time_as_the_trainer_read_it(
    runs, tmp_path, small_parts, suffix
):
    """The training file in parts (Parquet row groups of 30 rows, 16 rows read at a time;
    CSV blocks of 512 bytes): every row's prediction is the trainer's."""
    trained = read_csv(runs["mlp"] / "predictions.csv")
    source = Path(trained[0]["file"])
    new = tmp_path / f"train{suffix}"
    if suffix == ".parquet":
        empty_is_missing = pacsv.ConvertOptions(strings_can_be_null=True)  # as hlt reads CSV
        pq.write_table(pacsv.read_csv(source, convert_options=empty_is_missing), new,
                       row_group_size=30)  # fmt: skip
        assert pq.ParquetFile(new).metadata.num_row_groups == 7
    else:
        shutil.copy(source, new)
    out = tmp_path / "p.csv"
    assert hlt(["predict", str(runs["mlp"]), str(new), "--out", str(out)]) == 0
    by_row = {r["row"]: r for r in read_csv(out)}
    assert len(by_row) == 200
    for r in trained:
        assert by_row[r["row"]]["target"] == r["target"]
        assert [by_row[r["row"]][k] for k in LABELS] == [r[k] for k in LABELS]


def test_a_csv_column_typed_late_is_predicted_again_as_read_whole(
    runs, tmp_path, monkeypatch, caplog
):
    """Column ``a`` holds whole numbers for 60 rows, a real later, and new files a colour
    training never saw: in 512-byte blocks the file is read again with ``a`` as reals,
    and the table equals the one of a single block (the file read whole), unseen
    categories counted over the whole file."""
    lines = write_table(tmp_path / "raw.csv", 300, seed=1).read_text().splitlines()
    lines[1:61] = [f"{i % 5}," + line.split(",", 1)[1] for i, line in enumerate(lines[1:61])]
    new = tmp_path / "new.csv"
    new.write_text("\n".join(lines) + "\n")
    tables, warnings = [], []
    for block in (1 << 20, 512):
        monkeypatch.setattr(table_stream, "CSV_BLOCK", block)
        out = tmp_path / f"p{block}.csv"
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert hlt(["predict", str(runs["mlp"]), str(new), "--out", str(out)]) == 0
        tables.append(out.read_bytes())
        warnings.append([r.getMessage() for r in caplog.records if "unseen" in r.getMessage()])
        again = [r.getMessage() for r in caplog.records if "again" in r.getMessage()]
        assert again == ([] if block > 1000 else [f"{new}: column 'a' holds more than its "
                                                   "first block: predicting again from the "
                                                   "first file"])  # fmt: skip
    assert tables[0] == tables[1]
    assert len(warnings[0]) == 1 and warnings[0] == warnings[1]


def test_a_bad_row_deep_in_a_file_is_named_and_nothing_is_written(
    runs, tmp_path, capsys, small_parts
):
    lines = write_table(tmp_path / "raw.csv", 300).read_text().splitlines()
    lines[250] = "1.5,oops," + lines[250].split(",", 2)[2]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "p.csv"
    out.write_text("the previous predictions\n")
    error = refused(capsys, str(runs["mlp"]), str(bad), "--out", str(out), "--overwrite")
    assert "bad.csv row 250 column 'b': 'oops' is not a number" in error
    assert out.read_text() == "the previous predictions\n"  # replaced only when complete
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".p.csv")] == []
