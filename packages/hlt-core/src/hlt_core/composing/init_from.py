"""``model.init_from=<run folder or export>``: start a model from trained weights.

Only the model's weights are loaded, from an export (``model.safetensors`` +
``model.json``, see ``hlt_core.results.export``) or a run folder's ``export/``: the task's decoder
is built fresh for the new task, and the optimizer and step count start fresh, which is
what fine-tuning means (resuming a run is ``ckpt_path=``). A source whose architecture or
vocabulary differs from the configured model stops the run in one line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from hlt_core.errors import UserError
from hlt_core.results.export import SPEC_FILE, WEIGHTS_FILE, find_export
from hlt_core.storing.checkpoints import state_mismatches

KEY = "init_from"
log = logging.getLogger(__name__)


def split_model_config(model: DictConfig | Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The model's resolved config without ``init_from`` (the run's option, not an argument
    of the model: instantiate this), and the ``init_from`` value."""
    node = OmegaConf.to_container(model, resolve=True) if isinstance(model, DictConfig) else model
    config = dict(node)  # type: ignore[arg-type]
    return config, config.pop(KEY, None)


def export_folder(source: str | Path) -> Path:
    """The export folder of ``source``: itself, or a run folder's ``export/``."""
    folder = find_export(source)
    if folder is None:
        raise UserError(
            f"model.{KEY}={source} is neither an export ({SPEC_FILE} + {WEIGHTS_FILE}) nor a "
            "run folder holding export/"
        )
    return folder


def read_spec(source: str, path: Path) -> dict[str, Any]:
    """``model.json`` as its writer (hlt_core.results.export) writes it, else one line."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"model.{KEY}={source}: {path} is not readable JSON ({error})") from None
    if not (
        isinstance(spec, dict)
        and isinstance(spec.get("target"), str)
        and isinstance(spec.get("kwargs"), dict)
    ):
        raise UserError(
            f"model.{KEY}={source}: {path} is not an export's model.json (an object with "
            "'target' and 'kwargs')"
        )
    return spec


def read_weights(source: str, path: Path) -> dict[str, torch.Tensor]:
    """``model.safetensors``; a truncated or damaged file is one line naming it."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        reason = " ".join(str(error).split())[:200]
        raise UserError(
            f"model.{KEY}={source}: {path} is not a readable safetensors file ({reason})"
        ) from None


def dtype_mismatches(saved: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Weights of another type than the model's: a damaged or foreign file, not a cast."""
    wrong = sorted(
        f"{key} {saved[key].dtype} vs {expected[key].dtype}"
        for key in saved
        if saved[key].dtype != expected[key].dtype
    )
    return [f"dtype (saved vs model): {', '.join(wrong[:5])}"] if wrong else []


def check_same_model(source: str, spec: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """The same class and vocabulary (or input width) as the configured model."""
    target = config.get("_target_")
    if spec["target"] != target:
        raise UserError(f"model.{KEY}={source} holds a {spec['target']}, but the model is {target}")
    for key in ("vocab_size", "input_dim"):
        have, want = spec["kwargs"].get(key), config.get(key)
        if have != want:
            raise UserError(
                f"model.{KEY}={source} was trained with {key}={have}, but model.{key}={want}"
            )


def init_from(model: nn.Module, source: str, config: Mapping[str, Any]) -> str:
    """Load the weights of ``source`` into ``model``; returns what was loaded, in words.

    ``config`` is the model's resolved config (with ``_target_``). Every weight must fit:
    a missing, unexpected or mis-shaped key (another depth or width) is an error naming it.
    """
    folder = export_folder(source)
    spec = read_spec(source, folder / SPEC_FILE)
    check_same_model(source, spec, config)
    state = read_weights(source, folder / WEIGHTS_FILE)
    expected = model.state_dict()
    problems = state_mismatches(state, expected) or dtype_mismatches(state, expected)
    if problems:
        raise UserError(
            f"model.{KEY}={source} does not fit the configured model; " + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)
    count = sum(value.numel() for value in state.values())
    return (
        f"model.{KEY}: loaded {len(state)} tensors ({count:,} weights) of {spec['target']} "
        f"from {folder}; the decoder and the optimizer start fresh"
    )
