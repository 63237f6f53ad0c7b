"""The predictions table, written batch by batch: the same for ``predict=true`` in the
trainer and for ``hlt predict`` on new files.

Columns: ``file`` and ``row`` (a table's 1-based data row, a record id or a row index)
name each example; ``target`` is the true target where the data has one;
``prediction`` is the class name (probabilities) or the value (``prediction_<i>`` for
several values); with probabilities, one column per class, named after the class.
A ``.parquet`` path writes Parquet (needs pyarrow), anything else CSV. The file appears
only once complete (``hlt_core.storing.atomic``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch

from hlt_core.errors import UserError
from hlt_core.storing.atomic import atomic_file


class PredictionTable:
    """Rows for one output kind (``probabilities`` or ``values``) and class ``labels``."""

    def __init__(self, file: IO[bytes], parquet: bool, kind: str, labels: Sequence[str]) -> None:
        self.file = file
        self.parquet = parquet
        self.kind = kind
        self.labels = [str(label) for label in labels]
        self.columns: list[str] | None = None
        self.writer: Any = None

    def _columns(self, width: int, target: bool) -> list[str]:
        ids = ["file", "row", *(["target"] if target else [])]
        if self.kind == "probabilities":
            classes = self.labels if len(self.labels) == width else [str(i) for i in range(width)]
            return [*ids, "prediction", *classes]
        values = ["prediction"] if width == 1 else [f"prediction_{i}" for i in range(width)]
        return [*ids, *values]

    def write(
        self,
        ids: Sequence[tuple[str, str]],
        outputs: torch.Tensor,
        targets: Sequence[str] | None = None,
    ) -> None:
        """One batch: ``ids`` (file, row), the predictor's ``(batch, width)`` outputs and
        the true ``targets`` where known (the first batch decides whether the table has a
        ``target`` column; a later batch without targets leaves it empty)."""
        if outputs.dim() != 2:
            raise UserError(
                f"predictions of shape {tuple(outputs.shape)}: a predictions table holds one "
                "row per example; per-position tasks (language models, token labels) are "
                "read from the predictor directly"
            )
        outputs = outputs.float().cpu()
        if self.columns is None:
            self.columns = self._columns(outputs.shape[1], targets is not None)
        columns: list[list[Any]] = [[f for f, _ in ids], [r for _, r in ids]]
        if "target" in self.columns:
            columns.append(list(targets) if targets is not None else [""] * len(ids))
        if self.kind == "probabilities":
            names = self.columns[-outputs.shape[1] :]
            columns.append([names[i] for i in outputs.argmax(dim=-1).tolist()])
        columns += [outputs[:, i].tolist() for i in range(outputs.shape[1])]
        if self.parquet:
            self._write_parquet(columns)
        else:
            self._write_csv(columns)

    def _write_csv(self, columns: list[list[Any]]) -> None:
        if self.writer is None:
            self.text = io.TextIOWrapper(self.file, newline="", encoding="utf-8")
            self.writer = csv.writer(self.text)
            self.writer.writerow(self.columns)
        self.writer.writerows(zip(*columns, strict=True))

    def _write_parquet(self, columns: list[list[Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(dict(zip(self.columns or [], columns, strict=True)))
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.file, table.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is None:
            return
        if self.parquet:
            self.writer.close()
        else:
            self.text.flush()
            self.text.detach()  # the atomic file closes the bytes underneath


@contextmanager
def prediction_table(path: Path, kind: str, labels: Sequence[str]) -> Iterator[PredictionTable]:
    """A ``PredictionTable`` writing to ``path`` (Parquet when it ends in ``.parquet``)."""
    parquet = path.suffix.lower() == ".parquet"
    if parquet:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError(f"{path}: writing Parquet needs pyarrow: pip install pyarrow") from None
    with atomic_file(path) as file:
        table = PredictionTable(file, parquet, kind, labels)
        yield table
        table.close()


def in_split_order(trainer: Any, batches: Sequence[Any]) -> torch.Tensor | None:
    """Every process's predicted batches as one tensor in the split's order, on rank 0
    (None on the other ranks). Each process predicted its share of the batches; the keys
    its loader's sampler gave them (hlt's ``(epoch, index)``) put them back in order, so
    every example is written once and where it belongs."""
    outputs = [torch.as_tensor(b) for b in batches]
    if trainer.world_size == 1:
        return torch.cat(outputs)
    keys = list(trainer.predict_dataloaders.sampler)
    if len(keys) != len(outputs):  # a sampler of examples, not of whole batches
        raise UserError(
            f"predict=true cannot order the {len(outputs)} batches this process predicted; "
            "predict with one process (trainer.devices=1)"
        )
    shares: list[Any] = [None] * trainer.world_size if trainer.is_global_zero else []
    torch.distributed.gather_object(
        (keys, [o.cpu() for o in outputs]), shares if trainer.is_global_zero else None, dst=0
    )
    if not trainer.is_global_zero:
        return None
    keyed = [pair for share_keys, share in shares for pair in zip(share_keys, share, strict=True)]
    return torch.cat([output for _, output in sorted(keyed, key=lambda pair: pair[0])])
