"""The files `hlt new KIND NAME` writes, as format strings.

Placeholders: {name} (config option, e.g. ``conv``), {package} (``hlt-conv``),
{module} (``hlt_conv``), {cls} (``Conv``), {group} (``model``, ``task`` or ``data``).
Literal braces are doubled.
"""

from __future__ import annotations

PYPROJECT = """\
[project]
name = "{package}"
version = "0.1.0"
description = "{cls}: a {kind} for hlt, made with `hlt new {kind} {name}`."
readme = "README.md"
requires-python = ">=3.10,<3.14"
dependencies = [{dependencies}]

[project.entry-points."hlt.configs"]
{package} = "{module}.configs"
{model_entry_point}
[dependency-groups]
dev = ["pytest>=8"]

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{module}"]

[tool.deptry]
known_first_party = ["{module}"]
"""

README = """\
# {package}

A {kind} for hlt: `uv run apps/trainer {group}={name}`. Made with `hlt new {kind} {name}`;
edit `src/{module}/__init__.py` and `src/{module}/configs/{group}/{name}.yaml`.
"""

CHANGELOG = """\
# Changelog of {package}

## 0.1.0
- First version, made with `hlt new {kind} {name}`.
"""

# Model packages register their class: exports name it, and hlt-models builds only
# registered classes from an export.
MODEL_ENTRY_POINT = """
[project.entry-points."hlt.models"]
{name} = "{module}:{cls}"
"""

# Third-party requirements with their ranges, and the hlt packages a kind builds on: their
# ranges come from the installed versions (scaffold.hlt_requirement), never typed here.
DEPENDENCIES = {
    "model": ["torch>=2.3"],
    "task": ["torch>=2.3", "torchmetrics>=1.4"],
    "data": ["torch>=2.3"],
}
HLT_DEPENDENCIES = {"model": [], "task": ["hlt-tasks"], "data": ["hlt-data"]}

CODE = {
    "model": '''\
"""{cls}: a model for hlt. A plain torch module that states its feature width."""

import torch
from torch import nn


class {cls}(nn.Module):
    """Maps ``(batch, input_dim)`` inputs to ``(batch, width)`` features."""

    def __init__(self, input_dim: int, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_dim, width), nn.GELU(), nn.Linear(width, width))
        self.out_features = width

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)
''',
    "task": '''\
"""{cls}: a task for hlt. Reads outputs as class logits with cross-entropy."""

import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from hlt_tasks import LinearDecoder, Task
from hlt_tasks.base import TARGETS


class {cls}(Task):
    """Class logits from a linear head; cross-entropy loss; accuracy."""

    decoder_cls = LinearDecoder

    def __init__(self, num_classes: int) -> None:
        super().__init__(output_size=num_classes)
        self.num_classes = num_classes

    def loss(self, outputs: torch.Tensor, batch) -> torch.Tensor:
        return F.cross_entropy(outputs, batch[TARGETS].long())

    def metrics(self, prefix: str) -> MetricCollection:
        return MetricCollection({{"acc": MulticlassAccuracy(self.num_classes)}}, prefix=prefix)

    def metric_inputs(self, outputs: torch.Tensor, batch):
        return outputs, batch[TARGETS].long()

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=-1)
''',
    "data": '''\
"""{cls}: a sampler for hlt's SimulatedDataModule. Draws whole batches in torch."""

import torch

from hlt_data.batch import INPUTS, TARGETS


class {cls}:
    """Two classes: whether the product of the first two coordinates is positive."""

    def __init__(self, input_dim: int = 4) -> None:
        if input_dim < 2:
            raise ValueError(f"{cls} needs input_dim >= 2, got {{input_dim}}")
        self.dims = {{"input_dim": input_dim, "num_classes": 2}}

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        inputs = torch.rand(batch_size, self.dims["input_dim"], generator=generator) * 2 - 1
        targets = (inputs[:, 0] * inputs[:, 1] > 0).long()
        return {{INPUTS: inputs, TARGETS: targets}}
''',
}

CONFIG = {
    "model": """\
_target_: {module}.{cls}
input_dim: ${{data.dims.input_dim}}
width: 64
init_from: null  # a run folder or export to start from (fine-tuning)
""",
    "task": """\
_target_: {module}.{cls}
num_classes: ${{data.dims.num_classes}}
""",
    "data": """\
_target_: hlt_data.SimulatedDataModule
dims:
  input_dim: 4
  num_classes: 2
sampler:
  _target_: {module}.{cls}
  input_dim: ${{..dims.input_dim}}
batch_size: 64
train_batches: 50
val_batches: 10
test_batches: 10
seed: ${{seed}}
""",
}

TEST = {
    "model": """\
import torch

from {module} import {cls}


def test_{name}_returns_features_of_the_stated_width():
    model = {cls}(input_dim=5)
    assert model(torch.randn(3, 5)).shape == (3, model.out_features)
""",
    "task": """\
import torch

import hlt_tasks.base as keys
from {module} import {cls}


def test_{name}_decodes_scores_and_predicts():
    task = {cls}(num_classes=3)
    decoder = task.build_decoder(in_features=8)
    outputs = decoder(torch.randn(4, 8))
    batch = {{keys.INPUTS: torch.zeros(4, 8), keys.TARGETS: torch.tensor([0, 1, 2, 0])}}
    assert outputs.shape == (4, 3)
    assert task.loss(outputs, batch).item() > 0
    assert task.predict(outputs).shape == (4,)
""",
    "data": """\
import torch

import hlt_data.batch as keys
from {module} import {cls}


def test_{name}_draws_reproducible_labelled_batches():
    sampler = {cls}(input_dim=4)
    a = sampler.sample(16, torch.Generator().manual_seed(0))
    b = sampler.sample(16, torch.Generator().manual_seed(0))
    assert torch.equal(a[keys.INPUTS], b[keys.INPUTS])
    assert a[keys.INPUTS].shape == (16, 4)
    assert set(a[keys.TARGETS].tolist()) <= {{0, 1}}
""",
}
