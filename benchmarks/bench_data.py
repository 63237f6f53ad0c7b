"""Throughput of hlt-data's datamodules against two baselines, as JSON.

    uv run benchmarks/bench_data.py [--batch-size 256] [--batches 200] [--workers 2]

For each datamodule: batches/s and samples/s, against (a) a naive per-sample Dataset
with the default collate and (b) slicing a preloaded tensor (the practical limit), all
measured in the same run. Goals: simulated >= 10x naive and within 2x of slicing
(``vs_slicing`` >= 0.5); .npy files within 2x of slicing with workers.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hlt_data import FileDataModule, GaussianClusters, GlobFiles, NpyReader, SimulatedDataModule


def rate(batches: Iterable, batch_size: int, repeats: int = 5) -> dict[str, float]:
    """Best of ``repeats`` full passes (the first also warms up workers and caches)."""
    best = float("inf")
    count = 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = sum(1 for _ in batches)
        best = min(best, time.perf_counter() - start)
    return {"batches_per_s": count / best, "samples_per_s": count * batch_size / best}


class NaiveClusters(Dataset):
    """The per-sample way: one Python call and one draw per example, then collate."""

    def __init__(self, sampler: GaussianClusters, length: int) -> None:
        self.sampler, self.length = sampler, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        gen = torch.Generator().manual_seed(index)
        target = int(torch.randint(len(self.sampler.centres), (1,), generator=gen))
        noise = torch.randn(self.sampler.centres.shape[1], generator=gen)
        return {"inputs": self.sampler.centres[target] + noise, "targets": target}


class NaiveArrays(Dataset):
    """Per-sample reads of memory-mapped arrays, then the default collate."""

    def __init__(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int):
        return {
            "inputs": torch.from_numpy(np.array(self.inputs[index])),
            "targets": int(self.targets[index]),
        }


class Slices:
    """Slicing a preloaded tensor in shuffled order: the practical limit."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int) -> None:
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size

    def __iter__(self):
        order = torch.randperm(len(self.inputs))
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            rows = order[start : start + self.batch_size]
            yield {
                "inputs": self.inputs.index_select(0, rows),
                "targets": self.targets.index_select(0, rows),
            }


def ratios(result: dict, naive: dict, slicing: dict) -> dict[str, float]:
    return {
        **result,
        "vs_naive": result["samples_per_s"] / naive["samples_per_s"],
        "vs_slicing": result["samples_per_s"] / slicing["samples_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--input-dim", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    b, n, d = args.batch_size, args.batches, args.input_dim
    torch.manual_seed(0)
    out: dict = {
        "config": {
            **vars(args),
            "torch": torch.__version__,
            "cpus": torch.get_num_threads(),
            "machine": platform.machine(),
        },
    }

    sampler = GaussianClusters(input_dim=d, num_classes=10)
    sim = SimulatedDataModule(sampler, batch_size=b, train_batches=n)
    naive = rate(DataLoader(NaiveClusters(sampler, n * b), batch_size=b), b, repeats=1)
    drawn = sampler.sample(n * b, torch.Generator().manual_seed(0))
    slicing = rate(Slices(drawn["inputs"], drawn["targets"], b), b)
    out["simulated"] = {
        "naive_per_sample": naive,
        "tensor_slicing": slicing,
        "datamodule": ratios(rate(sim.train_dataloader(), b), naive, slicing),
    }

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = np.random.default_rng(0).normal(size=(n * b, d)).astype(np.float32)
        targets = np.random.default_rng(1).integers(0, 10, n * b)
        np.save(root / "inputs.npy", inputs)
        np.save(root / "targets.npy", targets)
        mapped = np.load(root / "inputs.npy", mmap_mode="r")
        naive = rate(
            DataLoader(NaiveArrays(mapped, targets), batch_size=b, shuffle=True), b, repeats=1
        )
        slicing = rate(Slices(torch.from_numpy(inputs), torch.from_numpy(targets), b), b)
        section = {"naive_per_sample": naive, "tensor_slicing": slicing}
        for workers in sorted({0, args.workers}):
            dm = FileDataModule(
                GlobFiles(root, "inputs.npy"),
                NpyReader(),
                batch_size=b,
                split_fractions={"train": 0.9, "val": 0.05, "test": 0.05},
                num_workers=workers,
                persistent_workers=workers > 0,
            )
            section[f"datamodule_workers_{workers}"] = ratios(
                rate(dm.train_dataloader(), b), naive, slicing
            )
        out["npy_files"] = section

    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
