"""TabM: an MLP for tables trained as an efficient ensemble, with numeric embeddings.

Two ideas from the tabular deep-learning papers that close most of the gap to boosted
trees on small and medium tables:

- numbers enter through periodic embeddings (Gorishniy et al. 2022, "On embeddings for
  numerical features in tabular deep learning", the "PLR (lite)" variant): each standardised
  number ``x`` becomes ``cos(2 pi c x), sin(2 pi c x)`` for learned frequencies ``c``,
  then a shared linear map and ReLU, so the network can read thresholds and bumps, as trees
  do, instead of only slopes;
- ``members`` MLPs share one weight matrix per layer and differ by rank-one scalings of its
  inputs and outputs and their own biases (BatchEnsemble, Wen et al. 2020, as TabM uses it:
  Gorishniy et al., ICLR 2025). Each member is trained on its own loss and their
  predictions are averaged, which costs little more than one MLP.

With ``linear_skip`` the inputs as they are (standardised numbers, categories one-hot or
embedded) are appended to every member's features, so the task's decoder holds a linear
model of the inputs beside the network ("wide and deep"): on a near-linear small table
the network then only has to learn what the linear part misses.

The model returns every member's features, ``(batch, members, hidden_dim)``; it states
``members``, so hlt-core applies the task's decoder to each member, trains each on its own
loss and combines their outputs as the task says (``hlt_core.contracts.EnsembleModel``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hlt_models.embeddings import TableInputs


class PeriodicEmbeddings(nn.Module):
    """``(batch, numbers)`` -> ``(batch, numbers * dim)``: per number, cosines and sines of
    ``frequencies`` learned frequencies (their own for each column, drawn from
    N(0, ``frequency_scale``)), then one linear map shared by all columns, and ReLU."""

    def __init__(
        self, numbers: int, dim: int = 16, frequencies: int = 48, frequency_scale: float = 0.01
    ) -> None:
        super().__init__()
        if numbers < 1 or dim < 1 or frequencies < 1 or frequency_scale <= 0:
            raise ValueError(
                "PeriodicEmbeddings needs numbers, dim, frequencies >= 1 and "
                f"frequency_scale > 0, got {numbers}, {dim}, {frequencies}, {frequency_scale}"
            )
        self.frequencies = nn.Parameter(torch.randn(numbers, frequencies) * frequency_scale)
        self.linear = nn.Linear(2 * frequencies, dim)
        self.out_features = numbers * dim

    def forward(self, numbers: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * self.frequencies * numbers[..., None]
        waves = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
        return torch.relu(self.linear(waves)).flatten(1)


class EnsembleLinear(nn.Module):
    """``(batch, members, in)`` -> ``(batch, members, out)``: one shared ``weight``; member
    ``i`` computes ``s_i * (W (r_i * x)) + b_i``. ``r`` starts at random signs where
    ``diverse`` (the first layer: what makes the members differ from the first step),
    else at ones, like ``s``; every member starts from the same bias."""

    def __init__(self, members: int, in_features: int, out_features: int, diverse: bool) -> None:
        super().__init__()
        shared = nn.Linear(in_features, out_features)
        self.weight = nn.Parameter(shared.weight.detach().clone())
        self.bias = nn.Parameter(shared.bias.detach().repeat(members, 1))
        r = torch.ones(members, in_features)
        if diverse:
            r = torch.where(torch.rand(members, in_features) < 0.5, -r, r)
        self.r = nn.Parameter(r)
        self.s = nn.Parameter(torch.ones(members, out_features))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return (inputs * self.r) @ self.weight.T * self.s + self.bias


class TabM(nn.Module):
    """``(batch, input_dim)`` table inputs -> ``(batch, members, hidden_dim)`` features.

    The first ``input_dim - len(categories)`` inputs are numbers (standardised by the data)
    and go through ``PeriodicEmbeddings``; the last ``len(categories)`` are category codes
    (``TableInputs``: one-hot or learned embeddings). Then ``num_layers`` BatchEnsemble
    layers of ``hidden_dim`` with ReLU and dropout, shared by ``members`` members; with
    ``linear_skip`` the numbers and encoded categories follow them in each member's row.
    """

    def __init__(
        self,
        input_dim: int,
        categories: list[int] | None = None,
        members: int = 32,
        hidden_dim: int = 256,
        num_layers: int = 2,
        dropout: float = 0.1,
        embedding_dim: int = 16,
        frequencies: int = 48,
        frequency_scale: float = 0.01,
        linear_skip: bool = True,
    ) -> None:
        super().__init__()
        if members < 1 or hidden_dim < 1 or num_layers < 1:
            raise ValueError(
                "TabM needs members, hidden_dim and num_layers >= 1, got "
                f"members={members}, hidden_dim={hidden_dim}, num_layers={num_layers}"
            )
        categories = list(categories or [])
        self.numbers = input_dim - len(categories)
        self.embed = (
            PeriodicEmbeddings(self.numbers, embedding_dim, frequencies, frequency_scale)
            if self.numbers > 0
            else None
        )
        self.table = TableInputs(len(categories), categories) if categories else None
        encoded = self.table.out_features if self.table else 0
        width = (self.embed.out_features if self.embed else 0) + encoded
        if width < 1:
            raise ValueError(f"TabM needs at least one input column, got input_dim={input_dim}")
        self.layers = nn.ModuleList(
            EnsembleLinear(members, width if i == 0 else hidden_dim, hidden_dim, diverse=i == 0)
            for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.input_dim = input_dim
        self.members = members
        self.linear_skip = linear_skip
        self.out_features = hidden_dim + (self.numbers + encoded if linear_skip else 0)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        numbers = inputs[:, : self.numbers]
        categories = self.table(inputs[:, self.numbers :]) if self.table is not None else None
        parts = [self.embed(numbers)] if self.embed is not None else []
        if categories is not None:
            parts.append(categories)
        features = torch.cat(parts, dim=-1)[:, None].expand(-1, self.members, -1)
        for layer in self.layers:
            features = self.dropout(torch.relu(layer(features)))
        if not self.linear_skip:
            return features
        raw = numbers if categories is None else torch.cat([numbers, categories], dim=-1)
        return torch.cat([features, raw[:, None].expand(-1, self.members, -1)], dim=-1)
