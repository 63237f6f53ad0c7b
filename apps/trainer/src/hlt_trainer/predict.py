"""``hlt predict``: a trained predictor on new files, written as a predictions table.

The export (a run's ``export/`` folder) holds the whole predictor, normalisation and
output transform included (``predictor.pt2``), and ``data.json`` says how the run read
its files; new files are read the same way (target columns ignored), a table a part at
a time (hlt_data.table_stream: a file larger than memory too), streamed through the
predictor in batches and written batch by batch (hlt_core.results.predictions) into a
file that appears only once complete.

An export may come from anyone, so it is read as data: ``model.json`` and ``data.json``
must hold what their writer (hlt_core.results.export) puts there, the files they name must lie
in the export folder, and the predictor is loaded through hlt_core.results.predictor_archive,
which refuses anything that could run code. The output never replaces an input, and
replaces an existing file only when asked to (``--overwrite``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from hlt_core.contracts import INPUTS, MASK
from hlt_core.errors import UserError, read_json_object
from hlt_core.results.export import DATA_FACTS_FILE, SPEC_FILE, find_export
from hlt_core.results.predictions import PredictionTable, prediction_table
from hlt_core.results.predictor_archive import load_predictor_archive
from hlt_data import DataConfigError, PathFiles, Table, label_name, prediction_reader
from hlt_data.files import check_finite
from hlt_data.table_stream import Reread, in_batches, parts_of

log = logging.getLogger(__name__)

BATCH_SIZE = 1024
OUTPUTS = ("probabilities", "values")


def export_folder(source: Path) -> Path:
    """The export in ``source``: a run folder (its ``export/``) or the export itself."""
    folder = find_export(source, needs=(SPEC_FILE, DATA_FACTS_FILE))
    if folder is None:
        raise UserError(
            f"{source}: neither a run folder nor an export (no {SPEC_FILE} + {DATA_FACTS_FILE})"
        )
    return folder


def inside(folder: Path, name: Any, key: str) -> Path:
    """The file ``name`` in ``folder``; a name that leads out of it is refused."""
    if (
        not isinstance(name, str)
        or not name
        or Path(name).is_absolute()
        or ".." in Path(name).parts
    ):
        raise UserError(f"{folder / SPEC_FILE}: {key}={name!r} is not a file name in the export")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise UserError(f"{folder / SPEC_FILE}: {key}={name!r} leads outside the export")
    if not path.is_file():
        raise UserError(f"{folder / name}: no such file (named by model.json's {key})")
    return path


def predictor_spec(folder: Path, spec: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``model.json``'s ``predictor`` entry, checked against what its writer puts there."""
    predictor = spec.get("predictor")
    if not isinstance(predictor, dict) or not predictor.get("file") or "reader" not in data:
        why = predictor.get("why") if isinstance(predictor, dict) else None
        raise UserError(
            f"{folder}: holds no predictor for new files "
            f"({why or 'exported before predictors or not from files'})"
        )
    where = folder / SPEC_FILE
    if predictor.get("format") != "torch.export":
        raise UserError(
            f"{where}: predictor format {predictor.get('format')!r}: hlt predict loads only "
            "torch.export predictors (.pt2), checked before loading"
        )
    if predictor.get("inputs") not in ([INPUTS], [INPUTS, MASK]):
        raise UserError(f"{where}: predictor.inputs must be [{INPUTS}] or [{INPUTS}, {MASK}]")
    if predictor.get("outputs") not in OUTPUTS:
        raise UserError(f"{where}: predictor.outputs must be one of {', '.join(OUTPUTS)}")
    return predictor


def reader_of(folder: Path, data: dict[str, Any]) -> tuple[tuple[str, ...], Any]:
    """The reader ``data.json`` describes; a damaged description is one line."""
    spec = data["reader"]
    where = folder / DATA_FACTS_FILE
    if not isinstance(spec, dict):
        raise UserError(f"{where}: reader is not an object")
    delimiter = spec.get("delimiter", ",")
    if spec.get("format") == "table" and not (isinstance(delimiter, str) and len(delimiter) == 1):
        raise UserError(f"{where}: reader.delimiter={delimiter!r} is not one character")
    try:
        return prediction_reader(spec)
    except KeyError as error:
        raise UserError(f"{where}: reader lacks {error}") from None
    except (TypeError, ValueError) as error:
        raise UserError(f"{where}: reader is damaged ({error})") from None


def labels_of(folder: Path, data: dict[str, Any]) -> list[str]:
    """The class names, column names of the table: a list of strings, if any."""
    labels = data.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise UserError(f"{folder / 'data.json'}: labels must be a list of class names")
    return labels


def check_batch_size(batch_size: Any) -> int:
    """A positive whole number of rows."""
    try:
        value = int(batch_size)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or str(batch_size).strip() != str(value):
        raise UserError(f"--batch-size {batch_size}: must be a whole number of rows, 1 or more")
    return value


def check_out(out: Path, overwrite: bool, inputs: Sequence[Path]) -> None:
    """``out`` may be written: not an input, not a folder, an existing file only with
    ``overwrite``, in a folder that exists (or can be made) and is writable."""
    if out.is_file() and any(out.samefile(path) for path in inputs):  # links included
        raise UserError(f"--out {out} is one of the inputs; choose another file")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; name a file (.csv or .parquet)")
    if out.exists() and not overwrite:
        raise UserError(f"--out {out} exists; pass --overwrite to replace it")
    parent = out.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"--out {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: cannot write in {parent}")


def check_width(file: Path, table: Table, dims: dict[str, Any]) -> None:
    """New rows must be as wide as the training rows (``.npy`` arrays can be anything)."""
    width = dims.get("input_dim")
    if width is not None and tuple(table.inputs.shape[1:]) != (width,):
        raise DataConfigError(
            f"{file}: inputs of shape {tuple(table.inputs.shape[1:])} per row, but the model "
            f"was trained on rows of {width} features"
        )


def tensor(array: np.ndarray) -> torch.Tensor:
    """A batch as the training data loader made it: float32, int64 or bool. Copied: a
    slice of a memory-mapped file is read-only, which torch would warn about and share."""
    if np.issubdtype(array.dtype, np.floating):
        return torch.from_numpy(np.array(array, dtype=np.float32))
    if np.issubdtype(array.dtype, np.integer):
        return torch.from_numpy(np.array(array, dtype=np.int64))
    return torch.from_numpy(np.array(array))


def true_targets(table: Table) -> list[str] | None:
    """The target column of a new file that has one (one value per row), as text."""
    if table.targets is None or table.targets.ndim != 1:
        return None
    return ["" if v is None or v != v else label_name(v) for v in table.targets.tolist()]  # NaN


def run_predictor(
    predictor: Callable[..., torch.Tensor], args: list[torch.Tensor], file: Path, first: str
) -> torch.Tensor:
    """The predictor's outputs; inputs it refuses (a shape it was not exported for) are
    one line naming the file and the batch's first row."""
    try:
        with torch.no_grad():
            return predictor(*args)
    except Exception as error:  # torch raises many types for inputs a program refuses
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise DataConfigError(
            f"{file} from {first}: the predictor refused the rows: {reason}"
        ) from None


@dataclass
class Predicting:
    """What predicting on a file needs: the ``predictor`` (taking a mask or not), the
    training rows' sizes (``dims``), the rows per call and how files are read (``parts``)."""

    predictor: Callable[..., torch.Tensor]
    with_mask: bool
    dims: dict[str, Any]
    batch_size: int
    parts: Callable[[Path], Iterator[Table]]
    spec: Path  # the export's model.json, named when its predictor and reader disagree

    def file(self, file: Path, table: PredictionTable, shown: Callable[[int], None]) -> None:
        """Predict on ``file``, read a part at a time, into ``table`` in batches of the
        whole file's rows (``shown`` is told each batch's size)."""
        for batch in in_batches(self.parts(file), self.batch_size):
            if self.with_mask and MASK not in batch.extras:
                raise UserError(
                    f"{self.spec}: the predictor takes a mask, but data.json's reader gives "
                    f"none for {file}"
                )
            check_width(file, batch, self.dims)
            check_finite(file, batch, INPUTS)
            args = [tensor(np.asarray(batch.inputs))]
            if self.with_mask:
                args.append(tensor(batch.extras[MASK]))
            outputs = run_predictor(self.predictor, args, file, batch.row_name(0))
            ids = [(str(file), batch.row_id(i)) for i in range(len(batch))]
            table.write(ids, outputs, true_targets(batch))
            shown(len(batch))


def predict(
    source: Path,
    inputs: Path,
    out: Path,
    batch_size: Any = BATCH_SIZE,
    overwrite: bool = False,
) -> int:
    """Write the predictions for every file under ``inputs``; returns the row count."""
    batch_size = check_batch_size(batch_size)
    folder = export_folder(source)
    spec = read_json_object(folder / SPEC_FILE)
    data = read_json_object(folder / DATA_FACTS_FILE)
    predictor_entry = predictor_spec(folder, spec, data)
    archive = inside(folder, predictor_entry["file"], "predictor.file")
    if not inputs.exists():
        raise UserError(f"{inputs}: no such file or folder")
    suffixes, reader = reader_of(folder, data)
    files = PathFiles(inputs, suffixes)()
    check_out(out, overwrite, [*files, folder / SPEC_FILE, folder / DATA_FACTS_FILE, archive])
    dims = data.get("dims")
    predicting = Predicting(
        load_predictor_archive(archive),
        MASK in predictor_entry["inputs"],
        dims if isinstance(dims, dict) else {},
        batch_size,
        parts_of(reader),
        folder / SPEC_FILE,
    )
    labels = labels_of(folder, data)
    while True:  # again only when a CSV column's type changes after its first block
        try:
            return predict_files(predicting, files, out, predictor_entry["outputs"], labels)
        except Reread as why:
            log.info("%s: predicting again from the first file", why)


def predict_files(
    predicting: Predicting, files: Sequence[Path], out: Path, kind: str, labels: list[str]
) -> int:
    """The predictions table ``out`` for ``files``, written whole or not at all."""
    rows = 0
    with (
        prediction_table(out, kind, labels) as table,
        Progress(transient=True) as progress,
    ):
        task = progress.add_task("predicting", total=len(files))  # one bar for the whole job

        def shown(part: int) -> None:
            nonlocal rows
            rows += part
            progress.update(task, description=f"{rows:,} rows")

        for file in files:
            predicting.file(file, table, shown)
            progress.update(task, advance=1)
    return rows
