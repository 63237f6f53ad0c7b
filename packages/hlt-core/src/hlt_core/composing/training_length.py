"""A run that trains must train at least one step.

``trainer.max_epochs=0`` or ``trainer.max_steps=0`` with ``train=true`` would end ``ok``
and export an untrained model as if it were the result; refused in one line before
anything is built (evaluating a checkpoint is ``train=false ckpt_path=...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hlt_core.errors import UserError


def check_training_length(train: bool, trainer: Mapping[str, Any]) -> None:
    if not train:
        return
    for key in ("max_epochs", "max_steps"):
        if trainer.get(key) == 0:
            raise UserError(
                f"trainer.{key}=0 with train=true trains nothing; set it to 1 or more, or "
                "evaluate a checkpoint with train=false ckpt_path=..."
            )
