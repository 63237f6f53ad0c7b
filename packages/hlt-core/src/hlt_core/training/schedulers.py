"""Learning-rate schedules that the ``scheduler/`` configs build around the optimizer."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from hlt_core.errors import UserError


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float = 0.0,
) -> LambdaLR:
    """Linear warm-up over ``warmup_steps`` optimizer steps, then cosine decay to
    ``min_ratio`` times the optimizer's learning rate at ``total_steps``, flat after.

    Meant to step every optimizer step (``interval: step``): long-sequence pretraining
    (HyenaDNA's recipe) runs few, long epochs, and a schedule per epoch would barely move.
    The count lives in the scheduler's state, so a resumed run continues the curve.
    """
    if total_steps < 1:
        raise UserError(
            f"scheduler.scheduler.total_steps={total_steps}: warmup_cosine counts optimizer "
            "steps; set trainer.max_steps (which it reads by default) or total_steps"
        )
    if not 0 <= warmup_steps < total_steps:
        raise UserError(
            f"scheduler.scheduler.warmup_steps={warmup_steps} must be >= 0 and below "
            f"total_steps={total_steps}"
        )
    if not 0 <= min_ratio <= 1:
        raise UserError(f"scheduler.scheduler.min_ratio={min_ratio} must be in [0, 1]")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
