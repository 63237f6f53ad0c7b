"""Checks a checkpoint before any work, so that a bad ``ckpt_path`` fails in one line
naming the path (missing, truncated, corrupt) or the keys (another architecture),
instead of deep inside Lightning after the run folder has been half written."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from hlt_core.errors import UserError

LIGHTNING_NAMES = ("last", "best", "hpc", "registry")
SHOWN = 5  # keys listed per kind of mismatch
# hlt-core's own code that a config names, at its path before the sub-packages (0.4 and
# before): a checkpoint saved then still names the same code
MOVED = {"hlt_core.schedulers.": "hlt_core.training.schedulers."}


def check_checkpoint_path(path: str | None) -> None:
    """Fail if ``ckpt_path`` is missing or unreadable (Lightning's names pass)."""
    if path is None or path in LIGHTNING_NAMES:
        return
    file = Path(path)
    if not file.is_file():
        raise UserError(f"ckpt_path={path}: no such file")
    if not os.access(file, os.R_OK):
        raise UserError(f"ckpt_path={path}: file is not readable")


def check_checkpoint_dir(callbacks: list[Any], checkpoint_dir: Path) -> None:
    """Fail if a configured ModelCheckpoint saves outside ``paths.checkpoint_dir``: hlt's
    own saves (on a signal, at max_steps, after fit) write ``last.ckpt`` there, and two
    folders would hold two different ``last.ckpt`` files."""
    wanted = os.path.realpath(checkpoint_dir)
    for callback in callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath != wanted:
            raise UserError(
                f"callbacks: a ModelCheckpoint saves to {callback.dirpath} but "
                f"paths.checkpoint_dir={checkpoint_dir}; set paths.checkpoint_dir instead"
            )


def load_checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint's contents; a truncated or corrupt file names its path.

    Memory-mapped: the check before a resume reads shapes and keys without a second copy
    of the weights in memory (Lightning loads the file again to restore it).
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise UserError(
            f"ckpt_path={path}: not a readable checkpoint (truncated or corrupt?): {reason}"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserError(f"ckpt_path={path}: not a Lightning checkpoint (no state_dict)")
    state = checkpoint["state_dict"]
    if not isinstance(state, Mapping):
        raise UserError(
            f"ckpt_path={path}: its state_dict is a {type(state).__name__}, not named weights"
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) and not str(key).endswith("_extra_state"):
            raise UserError(
                f"ckpt_path={path}: state_dict[{key!r}] is a {type(value).__name__}, not a tensor"
            )
    return checkpoint


def _listed(keys: list[str]) -> str:
    more = f" (+{len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def state_mismatches(saved: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """What keeps ``saved`` weights from loading strictly into a state dict ``expected``."""
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    reshaped = sorted(
        f"{key} {tuple(saved[key].shape)} vs {tuple(expected[key].shape)}"
        for key in set(saved) & set(expected)
        if hasattr(saved[key], "shape") and saved[key].shape != expected[key].shape
    )
    return [
        f"{label}: {_listed(keys)}"
        for label, keys in (
            ("missing from the saved weights", missing),
            ("not in this model", unexpected),
            ("shape (saved vs model)", reshaped),
        )
        if keys
    ]


def check_compatible(path: str, checkpoint: Mapping[str, Any], module: nn.Module) -> None:
    """Fail naming the mismatched keys if the checkpoint (loaded from ``path`` by
    ``load_checkpoint``) holds another architecture."""
    problems = state_mismatches(checkpoint["state_dict"], module.state_dict())
    if problems:
        raise UserError(
            f"ckpt_path={path} was saved from another architecture; " + "; ".join(problems)
        )


def checkpoint_position(path: str) -> dict[str, int]:
    """The step and epoch at which a checkpoint was saved (recorded for the best one)."""
    checkpoint = load_checkpoint(path)
    return {"best_step": int(checkpoint["global_step"]), "best_epoch": int(checkpoint["epoch"])}


def _flat(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, Mapping):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flat(value, f"{prefix}.{key}"))
        return flat
    return {prefix: node}


def _today(target: Any) -> Any:
    """A saved value (a ``_target_``) that names hlt-core's code at its old path, at today's."""
    for old, new in MOVED.items():
        if isinstance(target, str) and target.startswith(old):
            return new + target.removeprefix(old)
    return target


def holds_weights_only(checkpoint: Mapping[str, Any]) -> bool:
    """A ``state_dict`` but none of Lightning's training state."""
    return "pytorch-lightning_version" not in checkpoint


def check_resumable(path: str, checkpoint: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """A resume continues a run exactly as saved: the checkpoint must hold the training
    state, and the optimizer and scheduler settings must be the saved ones (Lightning
    restores the optimizer's state, lr included, so a changed setting would be recorded
    but silently not applied). Either problem is one line naming the key."""
    if "optimizer_states" not in checkpoint or "loops" not in checkpoint:
        raise UserError(
            f"ckpt_path={path} holds weights only (no optimizer or loop state), so training "
            "cannot resume from it; evaluate it with train=false"
        )
    saved = checkpoint.get("hlt_config")
    if not isinstance(saved, Mapping):
        return
    for group in ("optimizer", "scheduler"):
        if bool(saved.get(group)) != bool(config.get(group)):  # none: null or {}
            had = "one" if saved.get(group) else "none"
            raise UserError(
                f"{group} differs from the checkpoint's (it was trained with {had}): a resume "
                f"restores the saved optimizer and scheduler exactly; resume without "
                f"overriding {group}"
            )
        before, now = _flat(saved.get(group), group), _flat(config.get(group), group)
        before = {key: _today(value) for key, value in before.items()}
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                raise UserError(
                    f"{key}={now.get(key)} differs from the checkpoint's {before.get(key)}: a "
                    "resume restores the saved optimizer and scheduler exactly, so they "
                    f"cannot change; resume without overriding {key}"
                )
