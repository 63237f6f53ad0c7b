"""Built-in samplers for the simulated datamodule. Each draws a whole batch in torch."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from hlt_data.batch import INPUTS, TARGETS, Batch
from hlt_data.errors import DataConfigError


class GaussianClusters:
    """Classification: one Gaussian cluster of points per class.

    The cluster centres are fixed by ``task_seed`` (they define the problem); the points
    are drawn from the generator the datamodule passes in (they define the split).
    Targets are integer classes, readable as classes or as ordinal values.
    """

    def __init__(
        self,
        input_dim: int = 16,
        num_classes: int = 4,
        separation: float = 1.0,
        noise: float = 1.0,
        task_seed: int = 0,
    ) -> None:
        if input_dim < 1 or num_classes < 2:
            raise DataConfigError(
                f"GaussianClusters needs input_dim >= 1 and num_classes >= 2, got "
                f"input_dim={input_dim}, num_classes={num_classes}"
            )
        centres_gen = torch.Generator().manual_seed(task_seed)
        self.centres = torch.randn(num_classes, input_dim, generator=centres_gen) * separation
        self.noise = noise
        self.dims = {"input_dim": input_dim, "num_classes": num_classes}

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        num_classes, input_dim = self.centres.shape
        targets = torch.randint(num_classes, (batch_size,), generator=generator)
        noise = torch.randn(batch_size, input_dim, generator=generator) * self.noise
        return {INPUTS: self.centres.index_select(0, targets) + noise, TARGETS: targets}


class RegressionFunction:
    """Regression: ``y = f(w.x) + noise`` with ``x ~ U(-1, 1)^input_dim``.

    ``function`` is ``linear`` (``w.x``), ``sine`` (``sin(pi * w.x)``), ``square``
    (``(w.x)^2``), or any callable mapping a tensor of ``w.x`` values elementwise
    (in a config: ``_target_: torch.tanh`` with ``_partial_: true``, say);
    ``task_seed`` fixes the random weight vector ``w``.
    """

    functions = {
        "linear": lambda z: z,
        "sine": lambda z: torch.sin(math.pi * z),
        "square": lambda z: z * z,
    }

    def __init__(
        self,
        input_dim: int = 8,
        function: str | Callable[[torch.Tensor], torch.Tensor] = "sine",
        noise: float = 0.1,
        task_seed: int = 0,
    ) -> None:
        if not callable(function) and function not in self.functions:
            raise DataConfigError(
                f"RegressionFunction function={function!r} is unknown; choose one of "
                f"{list(self.functions)}"
            )
        gen = torch.Generator().manual_seed(task_seed)
        self.weights = torch.randn(input_dim, generator=gen) / math.sqrt(input_dim)
        self.function = function if callable(function) else self.functions[function]
        self.noise = noise
        self.dims = {"input_dim": input_dim, "output_dim": 1}

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        x = torch.rand(batch_size, self.weights.numel(), generator=generator) * 2 - 1
        y = self.function(x @ self.weights)
        y = y + torch.randn(batch_size, generator=generator) * self.noise
        return {INPUTS: x, TARGETS: y.unsqueeze(-1)}
