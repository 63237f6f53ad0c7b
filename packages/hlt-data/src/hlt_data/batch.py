"""The one batch structure every hlt datamodule yields.

A batch is a ``dict`` of tensors with the keys ``inputs`` and ``targets``, plus optional
extras such as ``mask`` (1 where a position counts) or ``lengths``. Models read
``inputs``; tasks read ``targets`` and the extras. Lightning moves dicts to the device.

This module owns the structure. hlt-tasks and hlt-core may not import hlt-data, so they
restate it as the read-only ``Mapping[str, torch.Tensor]`` (``hlt_tasks.base.Batch``,
``hlt_core.contracts.Batch``); tests/test_architecture.py checks the three agree.
"""

from __future__ import annotations

import torch

Batch = dict[str, torch.Tensor]

INPUTS = "inputs"
TARGETS = "targets"
MASK = "mask"
