"""Rebuild an exported model with hlt-models alone (no Lightning, no Hydra).

An export is a folder holding ``model.safetensors`` (the model's state dict) and
``model.json``: ``{"target": "hlt_models.Transformer", "kwargs": {...},
"out_features": 128}``. hlt-core writes it at the end of a training run (its one writer,
``hlt_core.results.export``); this module reads it.

An export is data received from elsewhere, so ``target`` is never imported as a dotted
path (that would run whatever it names, ``os.system`` included). It must be a class of
hlt-models or one that an installed package registers in the ``hlt.models`` entry point
group, e.g. ``my_net = "hlt_my_net:MyNet"`` (allowing the target ``hlt_my_net.MyNet``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

WEIGHTS = "model.safetensors"
CONFIG = "model.json"
ENTRY_POINTS = "hlt.models"


class ExportMismatchError(RuntimeError):
    """The exported weights do not fit the architecture named by the config."""


class ExportTargetError(ValueError):
    """The export names a target that is not an allowed model class."""


def allowed_targets() -> dict[str, type | EntryPoint]:
    """Each target an export may name: the hlt-models classes (as ``hlt_models.Name`` and
    by their module) and the ``hlt.models`` entry points (loaded only when named)."""
    import hlt_models

    allowed: dict[str, type | EntryPoint] = {}
    for name in hlt_models.__all__:
        cls = getattr(hlt_models, name)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            allowed[f"hlt_models.{name}"] = allowed[f"{cls.__module__}.{name}"] = cls
    for entry in entry_points(group=ENTRY_POINTS):
        allowed[entry.value.replace(":", ".")] = entry
    return allowed


def model_class(target: str) -> type[nn.Module]:
    """The class ``target`` names, if it is allowed (see the module doc); else one line."""
    found = allowed_targets().get(target)
    if found is None:
        raise ExportTargetError(
            f"export target {target!r} is refused: not a class of hlt-models nor one a "
            f"package registers in the {ENTRY_POINTS!r} entry point group"
        )
    cls = found.load() if isinstance(found, EntryPoint) else found
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ExportTargetError(f"export target {target!r} is registered but is not a model")
    return cls


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Strict load; torch's own report names every missing, unexpected or mis-shaped key."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        report = " ".join(str(error).split())
        raise ExportMismatchError(f"exported weights do not fit: {report}") from None
    return model


def load_exported(folder: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Build the model named in ``folder/model.json`` and load its weights (eval mode)."""
    folder = Path(folder)
    spec = json.loads((folder / CONFIG).read_text())
    model = model_class(str(spec["target"]))(**spec.get("kwargs", {}))
    load_weights(model, load_file(str(folder / WEIGHTS), device=str(device)))
    model.to(device)
    return model.eval()
