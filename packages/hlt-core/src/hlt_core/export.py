"""Write a model export at the end of a run, for use without Lightning or Hydra.

The contract (read by ``hlt_models.export.load_exported``; hlt-core does not import
hlt-models): a folder holding ``model.safetensors``, the state dict of ``module.model``
from the best checkpoint, and ``model.json``:
``{"target": "<dotted class>", "kwargs": {<resolved model config minus _target_>},
"out_features": <int>}``. Beside them ``data.json`` holds what the data was: its ``dims``
(sizes, class ``labels``) and the statistics fitted on the training split
(``feature_mean``/``feature_std``, ``target_mean``/``target_std``), which new inputs
must go through before the model sees them.

Given a ``Predictor`` (hlt_core.predictor), the folder also holds the whole predictor
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

from hlt_core.atomic import atomic_file, write_text_atomic
from hlt_core.predictor import Predictor, save_predictor

PREFIX = "model."


def model_state_from_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``model.*`` weights of a Lightning checkpoint, loaded weights-only."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return {
        key[len(PREFIX) :]: value.contiguous()
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(PREFIX)
    }


@rank_zero_only
def export_model(
    checkpoint: str | Path,
    model_config: Mapping[str, Any] | DictConfig,
    out_features: int,
    folder: str | Path,
    data_facts: Mapping[str, Any] | None = None,
    predictor: Predictor | None = None,
    example: tuple[torch.Tensor, ...] = (),
    output_kind: str = "values",
    onnx: bool = False,
) -> Path:
    """Write ``model.safetensors``, ``model.json`` and (given ``data_facts``)
    ``data.json`` into ``folder``; given a ``predictor`` (whose model and decoder get the
    checkpoint's weights here) and ``example`` inputs, the predictor too."""
    if isinstance(model_config, DictConfig):
        model_config = OmegaConf.to_container(model_config, resolve=True)  # type: ignore[assignment]
    kwargs = dict(model_config)
    target = kwargs.pop("_target_")
    folder = Path(folder)
    with atomic_file(folder / "model.safetensors") as file:
        file.write(save(model_state_from_checkpoint(checkpoint)))
    spec: dict[str, Any] = {"target": target, "kwargs": kwargs, "out_features": out_features}
    if predictor is not None:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
        predictor.load_state_dict(
            {k: v for k, v in state.items() if k.startswith(("model.", "decoder."))}
        )
        spec["predictor"] = {
            **save_predictor(predictor.cpu(), example, folder, onnx),
            "inputs": ["inputs", "mask"][: len(example)],
            "outputs": output_kind,
        }
    write_text_atomic(folder / "model.json", json.dumps(spec, indent=2) + "\n")
    if data_facts is not None:
        write_text_atomic(folder / "data.json", json.dumps(dict(data_facts), indent=2) + "\n")
    return folder
