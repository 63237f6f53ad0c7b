"""A model wrapper that timestamps every training-mode forward, for per-step timings that
leave out start-up, compilation and the end of the run."""

from __future__ import annotations

import time

import torch
from torch import nn


class Stamped(nn.Module):
    """Wraps ``model`` (keeping its ``out_features``); ``stamps`` holds the wall time of
    each training forward, ``cpu_stamps`` this process's CPU time there (on a CPU shared
    with other jobs, time spent waiting for the CPU shows in the first, not the second).
    On CUDA, steps whose index is in ``sync_at`` synchronise first, so that a window
    between two of them measures finished work."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.out_features = model.out_features
        self.stamps: list[float] = []
        self.cpu_stamps: list[float] = []
        self.sync_at: set[int] = set()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.training:
            if len(self.stamps) in self.sync_at and torch.cuda.is_available():
                torch.cuda.synchronize()
            self.stamps.append(time.perf_counter())
            self.cpu_stamps.append(time.process_time())
        return self.inner(inputs)

    def per_step_ms(self, warmup: int, cpu: bool = False) -> float:
        """Mean milliseconds per step after the first ``warmup`` steps (of CPU time if
        ``cpu``)."""
        s = (self.cpu_stamps if cpu else self.stamps)[warmup:]
        return 1000.0 * (s[-1] - s[0]) / (len(s) - 1)
