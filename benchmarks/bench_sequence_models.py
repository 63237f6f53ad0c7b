"""Forward+backward time and memory of Hyena and the Transformer against sequence length.

Prints one JSON object: per model and length, the median seconds of a training step
(forward, backward) and the peak memory (CUDA: ``max_memory_allocated``; CPU: bytes
of tensors saved for backward, the activation memory a step must hold), plus the ratio
of each to the shortest length, to read the growth: O(L log L) for Hyena, O(L^2) time
for attention. Runs on CPU as is; ``--device cuda`` for a GPU.

    uv run python benchmarks/bench_sequence_models.py --lengths 256 512 1024 2048
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from hlt_models import Hyena, Transformer, num_parameters

MODELS = {"hyena": Hyena, "transformer": Transformer}


class SavedBytes:
    """Counts bytes of tensors autograd saves for backward (activation memory)."""

    def __init__(self) -> None:
        self.total = 0

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        self.total += tensor.numel() * tensor.element_size()
        return tensor

    def __enter__(self) -> SavedBytes:
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hooks.__exit__(*exc)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step(model: torch.nn.Module, tokens: torch.Tensor, dtype: torch.dtype | None) -> None:
    with torch.autocast(tokens.device.type, dtype=dtype, enabled=dtype is not None):
        loss = model(tokens).float().pow(2).mean()
    loss.backward()
    model.zero_grad(set_to_none=True)


def measure(name: str, length: int, args: argparse.Namespace) -> dict[str, float]:
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = MODELS[name](vocab_size=args.vocab, dim=args.dim, depth=args.depth, max_len=length).to(
        device
    )
    tokens = torch.randint(args.vocab, (args.batch, length), device=device)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    for _ in range(args.warmup):
        step(model, tokens, dtype)
    times = []
    for _ in range(args.repeats):
        sync(device)
        start = time.perf_counter()
        step(model, tokens, dtype)
        sync(device)
        times.append(time.perf_counter() - start)
    row = {"seconds": statistics.median(times), "params": num_parameters(model)}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step(model, tokens, dtype)
        row["peak_mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
        with SavedBytes() as saved, autocast:
            loss = model(tokens).float().pow(2).mean()
        loss.backward()
        row["saved_activation_mib"] = saved.total / 2**20
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    # sizes named as in gpu_bench.py, defaults for a CPU length sweep: alike, not shared
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.models:
        rows = {}
        for length in args.lengths:
            rows[str(length)] = measure(name, length, args)
        first = rows[str(args.lengths[0])]
        for length, row in rows.items():
            scale = int(length) / args.lengths[0]
            row["time_ratio"] = row["seconds"] / first["seconds"]
            row["length_ratio"] = scale
            mem = "peak_mib" if "peak_mib" in row else "saved_activation_mib"
            row["memory_ratio"] = row[mem] / first[mem]
        results[name] = rows
    device = (
        torch.cuda.get_device_name(0)
        if args.device.startswith("cuda")
        else f"{platform.processor() or platform.machine()} x{torch.get_num_threads()}"
    )
    print(
        json.dumps(
            {
                "device": device,
                "torch": torch.__version__,
                "config": {k: v for k, v in vars(args).items() if k != "models"},
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
