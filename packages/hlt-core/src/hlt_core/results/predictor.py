"""The whole predictor as one torch module, and its export as a torch-only artifact.

``Predictor`` = input normalisation (the training split's feature statistics) -> model
-> task decoder -> the task's output transform (probabilities, original units). It is
exported with ``torch.export`` (``predictor.pt2``), so loading it needs torch alone:
``torch.export.load(path).module()(inputs[, mask])``. A model that ``torch.export``
cannot capture falls back to TorchScript (``predictor.ts``, ``torch.jit.load``).
With ``onnx``, ``predictor.onnx`` too (same inputs, same dynamic dimensions).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hlt_core.contracts import INPUTS, MASK
from hlt_core.errors import UserError
from hlt_core.storing.atomic import atomic_file


class Predictor(nn.Module):
    """Raw inputs (as the reader gives them) -> what a user reads, in float32."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        decoder: nn.Module,
        transform: nn.Module,
        feature_mean: Any = None,
        feature_std: Any = None,
        max_len: int | None = None,
    ) -> None:
        super().__init__()
        self.max_len = max_len  # the longest sequence the model takes (its config's max_len)
        self.model = model
        self.decoder = decoder
        self.transform = transform
        self.normalize = feature_mean is not None
        if self.normalize:  # not persistent: the checkpoint's weights load strictly
            for name, value in (("feature_mean", feature_mean), ("feature_std", feature_std)):
                tensor = torch.as_tensor(value, dtype=torch.float32)
                self.register_buffer(name, tensor, persistent=False)

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.normalize:
            inputs = (inputs - self.feature_mean) / self.feature_std
        features = self.model(inputs)
        outputs = self.decoder(features) if mask is None else self.decoder(features, mask=mask)
        return self.transform(outputs)


def example_inputs(batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Two rows of a data batch (export specialises sizes 0 and 1): inputs[, mask]."""
    keys = [INPUTS, MASK] if MASK in batch else [INPUTS]
    return tuple(torch.cat([batch[key][:1]] * 2).cpu() for key in keys)


def _dynamic(example: tuple[torch.Tensor, ...], length: int | None) -> dict[str, Any]:
    """Batch (dim 0) is dynamic; sequence length (dim 1) too when ``length`` is given."""
    dims: dict[int, Any] = {0: torch.export.Dim("batch")}
    if length is not None:
        dims[1] = torch.export.Dim("length", min=1, max=length)
    names = (INPUTS, MASK)[: len(example)]
    return {name: dict(dims) for name in names}


def check_onnx() -> None:
    """``export_onnx=true`` needs the exporter's packages; say so before training."""
    if importlib.util.find_spec("onnxscript") is None or importlib.util.find_spec("onnx") is None:
        raise UserError("export_onnx=true needs onnx and onnxscript: install 'hlt-core[onnx]'")


# Loggers of the ONNX exporter whose INFO lines (each optimisation pass) and warnings
# (optional torchvision ops it cannot register) tell a user nothing they can act on.
ONNX_CHATTER = {
    "onnx_ir": logging.WARNING,
    "onnxscript": logging.WARNING,
    "torch.onnx._internal.exporter._registration": logging.ERROR,
}


@contextlib.contextmanager
def _quiet_onnx() -> Iterator[None]:
    loggers = {logging.getLogger(name): level for name, level in ONNX_CHATTER.items()}
    before = {logger: logger.level for logger in loggers}
    for logger, level in loggers.items():
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, level in before.items():
            logger.setLevel(level)


def save_onnx(
    predictor: Predictor, example: tuple[torch.Tensor, ...], length: int | None, folder: Path
) -> dict[str, Any]:
    """``predictor.onnx`` with the same inputs and dynamic dimensions as the .pt2."""
    names = [INPUTS, MASK][: len(example)]
    with _quiet_onnx():
        program = torch.onnx.export(
            predictor,
            example,
            input_names=names,
            output_names=["outputs"],
            dynamic_shapes=_dynamic(example, length),
            dynamo=True,
            verbose=False,  # its progress lines, one per stage
        )
    assert program is not None  # the dynamo exporter always returns its program
    with atomic_file(folder / "predictor.onnx") as file:
        file.write(program.model_proto.SerializeToString())
    return {"file": "predictor.onnx", "inputs": names}


def save_predictor(
    predictor: Predictor, example: tuple[torch.Tensor, ...], folder: Path, onnx: bool = False
) -> dict[str, Any]:
    """Write the predictor into ``folder``; returns what ``model.json`` says of it.

    Sequences (inputs with a mask) try a dynamic length up to the model's ``max_len``
    first; a model whose code fixes the length (Hyena's filter positions come from
    ``torch.linspace``, which needs a concrete length) keeps a dynamic batch only. If
    neither exporter captures the model, ``file`` is None and ``why`` says what failed.
    """
    predictor = predictor.eval()
    max_len = predictor.max_len or example[0].shape[1]
    lengths = [max_len, None] if len(example) == 2 else [None]
    errors = []
    for length in lengths:
        try:
            with torch.no_grad():
                program = torch.export.export(
                    predictor, example, dynamic_shapes=_dynamic(example, length)
                )
        except Exception as error:  # torch.export raises many types; the last resort follows
            errors.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
            continue
        with atomic_file(folder / "predictor.pt2") as file:
            torch.export.save(program, file)
        dynamic = ["batch", "length"] if length is not None else ["batch"]
        spec: dict[str, Any] = {
            "file": "predictor.pt2",
            "format": "torch.export",
            "dynamic": dynamic,
        }
        if onnx:
            spec["onnx"] = save_onnx(predictor, example, length, folder)
        return spec
    try:
        with torch.no_grad():
            scripted = torch.jit.trace(predictor, example)
    except Exception as error:  # a finished run keeps its weights export regardless
        errors.append(f"TorchScript: {type(error).__name__}: {str(error).splitlines()[0]}")
        return {"file": None, "format": "none", "why": "; ".join(errors)}
    with atomic_file(folder / "predictor.ts") as file:
        torch.jit.save(scripted, file)
    return {"file": "predictor.ts", "format": "torchscript", "why": "; ".join(errors)}
