"""``hlt predict``: a trained predictor on new files, written as a predictions table.

The export (a run's ``export/`` folder) holds the whole predictor, normalisation and
output transform included (``predictor.pt2``), and ``data.json`` says how the run read
its files; new files are read the same way (target columns ignored), streamed through
the predictor in batches and written batch by batch (hlt_core.predictions).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from hlt_core.errors import UserError
from hlt_core.export import DATA_FACTS_FILE, SPEC_FILE, find_export
from hlt_core.predictions import prediction_table
from hlt_data import DataConfigError, PathFiles, Table, prediction_reader

BATCH_SIZE = 1024


def export_folder(source: Path) -> Path:
    """The export in ``source``: a run folder (its ``export/``) or the export itself."""
    folder = find_export(source, needs=(SPEC_FILE, DATA_FACTS_FILE))
    if folder is None:
        raise UserError(
            f"{source}: neither a run folder nor an export (no {SPEC_FILE} + {DATA_FACTS_FILE})"
        )
    return folder


def load_predictor(folder: Path, spec: dict[str, Any]) -> Callable[..., torch.Tensor]:
    """The predictor module, loaded with torch alone, in the format ``model.json`` names."""
    path = folder / spec["file"]
    if spec["format"] == "torch.export":
        return torch.export.load(path).module()
    return torch.jit.load(path).eval()


def check_width(file: Path, table: Table, dims: dict[str, Any]) -> None:
    """New rows must be as wide as the training rows (``.npy`` arrays can be anything)."""
    width = dims.get("input_dim")
    if width is not None and tuple(table.inputs.shape[1:]) != (width,):
        raise DataConfigError(
            f"{file}: inputs of shape {tuple(table.inputs.shape[1:])} per row, but the model "
            f"was trained on rows of {width} features"
        )


def tensor(array: np.ndarray) -> torch.Tensor:
    """A batch as the training data loader made it: float32, int64 or bool."""
    if np.issubdtype(array.dtype, np.floating):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if np.issubdtype(array.dtype, np.integer):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
    return torch.from_numpy(np.ascontiguousarray(array))


def predict(source: Path, inputs: Path, out: Path, batch_size: int = BATCH_SIZE) -> int:
    """Write the predictions for every file under ``inputs``; returns the row count."""
    folder = export_folder(source)
    spec = json.loads((folder / SPEC_FILE).read_text())
    data = json.loads((folder / DATA_FACTS_FILE).read_text())
    if not spec.get("predictor", {}).get("file") or "reader" not in data:
        why = spec.get("predictor", {}).get("why", "exported before predictors or not from files")
        raise UserError(f"{folder}: holds no predictor for new files ({why})")
    if not inputs.exists():
        raise UserError(f"{inputs}: no such file or folder")
    suffixes, reader = prediction_reader(data["reader"])
    files = PathFiles(inputs, suffixes)()
    predictor = load_predictor(folder, spec["predictor"])
    with_mask = "mask" in spec["predictor"]["inputs"]
    rows = 0
    with (
        prediction_table(out, spec["predictor"]["outputs"], data.get("labels", [])) as table,
        Progress(transient=True) as progress,
    ):
        for file in files:
            read = reader(file)
            check_width(file, read, data.get("dims", {}))
            task = progress.add_task(file.name, total=len(read))
            for start in range(0, len(read), batch_size):
                stop = min(start + batch_size, len(read))
                args = [tensor(read.inputs[start:stop])]
                if with_mask:
                    args.append(tensor(read.extras["mask"][start:stop]))
                with torch.no_grad():
                    outputs = predictor(*args)
                table.write([(str(file), read.row_id(i)) for i in range(start, stop)], outputs)
                progress.update(task, advance=stop - start)
            rows += len(read)
    return rows
