"""The one batch structure every hlt datamodule yields.

A batch is a ``dict`` of tensors with the keys ``inputs`` and ``targets``, plus optional
extras such as ``mask`` (1 where a position counts) or ``lengths``. Models read
``inputs``; tasks read ``targets`` and the extras. Lightning moves dicts to the device.
"""

from __future__ import annotations

import torch

Batch = dict[str, torch.Tensor]

INPUTS = "inputs"
TARGETS = "targets"
