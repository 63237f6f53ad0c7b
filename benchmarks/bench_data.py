"""Throughput of hlt-data's datamodules against two baselines, as JSON.

    uv run benchmarks/bench_data.py [--batch-size 256] [--batches 200] [--workers 2]
                                    [--worker-chunk 32]

For each datamodule: batches/s and samples/s, against (a) a naive per-sample Dataset
with the default collate and (b) slicing a preloaded tensor (the practical limit), all
measured in the same run; slicing and the datamodules of a section take turns pass by
pass, so a busy spell on a shared machine hits them alike. With workers, the .npy
datamodule is measured with ``worker_chunk=1`` (one batch per worker item) and with
``--worker-chunk``. Goals: simulated >= 10x naive and within 2x of slicing
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
from hlt_data.loader import WORKER_CHUNK


def rate(batches: Iterable, batch_size: int, repeats: int = 5) -> dict[str, float]:
    """Best of ``repeats`` full passes (the first also warms up workers and caches)."""
    return rates({"it": batches}, batch_size, repeats)["it"]


def rates(
    named: dict[str, Iterable], batch_size: int, repeats: int = 5
) -> dict[str, dict[str, float]]:
    """Best of ``repeats`` full passes of each, taking turns pass by pass."""
    best = dict.fromkeys(named, float("inf"))
    counts = dict.fromkeys(named, 0)
    for _ in range(repeats):
        for name, batches in named.items():
            start = time.perf_counter()
            counts[name] = sum(1 for _ in batches)
            best[name] = min(best[name], time.perf_counter() - start)
    return {
        name: {
            "batches_per_s": counts[name] / best[name],
            "samples_per_s": counts[name] * batch_size / best[name],
        }
        for name in named
    }


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
    parser.add_argument("--worker-chunk", type=int, default=WORKER_CHUNK)
    parser.add_argument("--repeats", type=int, default=5)
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
    measured = rates(
        {
            "tensor_slicing": Slices(drawn["inputs"], drawn["targets"], b),
            "datamodule": sim.train_dataloader(),
        },
        b,
        args.repeats,
    )
    slicing = measured["tensor_slicing"]
    out["simulated"] = {
        "naive_per_sample": naive,
        "tensor_slicing": slicing,
        "datamodule": ratios(measured["datamodule"], naive, slicing),
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
        loaders: dict[str, Iterable] = {
            "tensor_slicing": Slices(torch.from_numpy(inputs), torch.from_numpy(targets), b)
        }
        chunks: dict[str, int] = {}
        settings = [(0, 1)]
        if args.workers > 0:
            settings += [(args.workers, 1), (args.workers, args.worker_chunk)]
        for workers, chunk in dict.fromkeys(settings):
            dm = FileDataModule(
                GlobFiles(root, "inputs.npy"),
                NpyReader(),
                batch_size=b,
                split_fractions={"train": 0.9, "val": 0.05, "test": 0.05},
                num_workers=workers,
                persistent_workers=workers > 0,
                worker_chunk=chunk,
            )
            name = f"datamodule_workers_{workers}"
            name = name if workers == 0 else f"{name}_chunk_{chunk}"
            loaders[name], chunks[name] = dm.train_dataloader(), chunk
        measured = rates(loaders, b, args.repeats)
        slicing = measured.pop("tensor_slicing")
        section = {"naive_per_sample": naive, "tensor_slicing": slicing}
        for name, result in measured.items():
            section[name] = {
                **ratios(result, naive, slicing),
                "worker_chunk": chunks[name],
                "batches_per_worker_item": loaders[name].chunk,
            }
        out["npy_files"] = section

    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
