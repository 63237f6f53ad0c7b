"""Write a model export at the end of a run, for use without Lightning or Hydra.

The contract (read by ``hlt_models.export.load_exported``; hlt-core does not import
hlt-models): a folder holding ``model.safetensors``, the state dict of ``module.model``
from the best checkpoint, and ``model.json``:
``{"target": "<dotted class>", "kwargs": {<resolved model config minus _target_>},
"out_features": <int>}``. Beside them ``data.json`` holds the data facts
(``hlt_core.contracts.DataModule.data_facts``): the ``dims`` (sizes, class ``labels``)
and the statistics fitted on the training split (``feature_mean``/``feature_std``,
``target_mean``/``target_std``), which new inputs must go through before the model sees
them. The file names and how an export folder is found live here only.

Given a ``Predictor`` (hlt_core.results.predictor), the folder also holds the whole predictor
(normalisation, model, decoder, output transform) as ``predictor.pt2`` (or
``predictor.ts``), which needs torch alone; ``model.json``'s ``predictor`` entry says
which file and format, its inputs, its dynamic dimensions and what it outputs
(``probabilities``, in the order of ``data.json``'s ``labels``, or ``values``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save

from hlt_core.contracts import INPUTS, MASK
from hlt_core.results.predictor import Predictor, save_predictor
from hlt_core.storing.atomic import atomic_file, write_text_atomic

PREFIX = "model."
SPEC_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
DATA_FACTS_FILE = "data.json"  # the data facts; the name is part of the export format


def find_export(
    source: str | Path, needs: tuple[str, ...] = (SPEC_FILE, WEIGHTS_FILE)
) -> Path | None:
    """The export of ``source``: itself, or a run folder's ``export/``, holding ``needs``."""
    path = Path(source)
    for folder in (path, path / "export"):
        if all((folder / name).is_file() for name in needs):
            return folder
    return None


def model_state(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``model.*`` weights of a Lightning state dict, named as the model names them."""
    return {
        key[len(PREFIX) :]: value.contiguous()
        for key, value in state_dict.items()
        if key.startswith(PREFIX)
    }


@rank_zero_only
def export_model(
    state_dict: Mapping[str, torch.Tensor],
    model_config: Mapping[str, Any] | DictConfig,
    out_features: int,
    folder: str | Path,
    data_facts: Mapping[str, Any] | None = None,
    predictor: Predictor | None = None,
    example: tuple[torch.Tensor, ...] = (),
    output_kind: str = "values",
    onnx: bool = False,
) -> Path:
    """Write the weights of ``state_dict`` (a checkpoint's), ``model.json`` and (given
    ``data_facts``) ``data.json`` into ``folder``; given a ``predictor`` (whose model and
    decoder get the same weights here) and ``example`` inputs, the predictor too."""
    if isinstance(model_config, DictConfig):
        model_config = OmegaConf.to_container(model_config, resolve=True)  # type: ignore[assignment]
    kwargs = dict(model_config)
    target = kwargs.pop("_target_")
    folder = Path(folder)
    with atomic_file(folder / WEIGHTS_FILE) as file:
        file.write(save(model_state(state_dict)))
    spec: dict[str, Any] = {"target": target, "kwargs": kwargs, "out_features": out_features}
    if predictor is not None:
        predictor.load_state_dict(
            {k: v for k, v in state_dict.items() if k.startswith(("model.", "decoder."))}
        )
        spec["predictor"] = {
            **save_predictor(predictor.cpu(), example, folder, onnx),
            "inputs": [INPUTS, MASK][: len(example)],
            "outputs": output_kind,
        }
    write_text_atomic(folder / SPEC_FILE, json.dumps(spec, indent=2) + "\n")
    if data_facts is not None:
        write_text_atomic(folder / DATA_FACTS_FILE, json.dumps(dict(data_facts), indent=2) + "\n")
    return folder
