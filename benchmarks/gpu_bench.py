"""GPU throughput of hlt's training path against a raw PyTorch loop, plus a sync check.

    uv run --offline python benchmarks/gpu_bench.py            # ~3 minutes on one H100
    uv run --offline python benchmarks/gpu_bench.py --quick    # a smoke run (also on CPU)

For each sequence model (``hlt_models.Transformer`` and ``hlt_models.Hyena`` where
importable, else ``hlt_models.MLP`` and the JSON says so) it trains the same model, on the
same random token batches (next-token prediction), with the same AdamW, in bf16 autocast:

- ``raw``: a hand-written loop (``torch.autocast`` bf16, zero_grad, backward, step);
- ``hlt``: ``hlt_core.TaskModule`` + a next-token task with torchmetrics accuracy, under a
  Lightning Trainer with ``precision="bf16-mixed"``, ``log_every_n_steps=50``, hlt's
  progress bar disabled (no terminal) and no checkpointing.

Tokens/s are measured over the steady state (timestamps at each training forward, with
``torch.cuda.synchronize`` only at the ends of the window); MFU = model FLOPs per token
(6 x parameters + attention 12 x depth x dim x seq_len for the Transformer; 6 x
parameters for Hyena and the MLP, ignoring the FFT convolution) x tokens/s / peak bf16
dense FLOPS of the card (H100 SXM 989 TFLOPS, H200 the same; other cards: --peak-tflops).

The sync check runs hlt's path with ``torch.cuda.set_sync_debug_mode("warn")`` switched on
only on steady-state (non-logging) steps and counts the warnings raised.

Prints one JSON object; every section catches its own errors so one failure does not lose
the others. Downloads nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import platform
import statistics
import sys
import time
import traceback
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stamped import Stamped

RESULT: dict[str, Any] = {"benchmark": "gpu", "errors": {}}


# ----------------------------------------------------------------------------- models
def build_model(kind: str, vocab: int, seq_len: int, dim: int, depth: int) -> nn.Module:
    import hlt_models

    if kind == "transformer":
        return hlt_models.Transformer(
            vocab_size=vocab, dim=dim, depth=depth, heads=max(1, dim // 64), max_len=seq_len
        )
    if kind == "hyena":
        return hlt_models.Hyena(vocab_size=vocab, dim=dim, depth=depth, max_len=seq_len)
    raise ValueError(kind)


class TokenMLP(nn.Module):
    """Fallback: embedding + hlt_models.MLP per position (when no sequence models exist)."""

    def __init__(self, vocab: int, dim: int, depth: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        try:
            import hlt_models

            self.mlp = hlt_models.MLP(dim, hidden_dim=dim, num_layers=depth)
        except Exception:  # hlt_models itself unimportable: the same layers in plain torch
            layers: list[nn.Module] = []
            for _ in range(depth):
                layers += [nn.Linear(dim, dim), nn.LayerNorm(dim), nn.GELU()]
            self.mlp = nn.Sequential(*layers)
        self.out_features = dim

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embed(inputs))


class NextToken:
    """A next-token task in hlt's task contract (decoder, loss, metrics)."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def build_decoder(self, in_features: int) -> nn.Module:
        return nn.Linear(in_features, self.vocab)

    def loss(self, outputs, batch):
        return F.cross_entropy(outputs.flatten(0, 1).float(), batch["targets"].flatten())

    def metrics(self, prefix):
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy

        return MetricCollection({"acc": MulticlassAccuracy(self.vocab)}, prefix=prefix)

    def metric_inputs(self, outputs, batch):
        return outputs.flatten(0, 1), batch["targets"].flatten()

    def predict(self, outputs):
        return outputs.argmax(-1)


def make_batches(n: int, batch: int, seq_len: int, vocab: int, pin: bool) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        tokens = torch.randint(0, vocab, (batch, seq_len + 1), generator=gen)
        b = {"inputs": tokens[:, :-1].contiguous(), "targets": tokens[:, 1:].contiguous()}
        if pin:
            b = {k: v.pin_memory() for k, v in b.items()}
        out.append(b)
    return out


def flops_per_token(kind: str, params: int, dim: int, depth: int, seq_len: int) -> float:
    flops = 6.0 * params
    if kind == "transformer":
        flops += 12.0 * depth * dim * seq_len  # attention scores and values, fwd + bwd
    return flops


# ----------------------------------------------------------------------------- runners
def fresh(kind, args, fallback):
    torch.manual_seed(0)
    if fallback:
        model = TokenMLP(args.vocab, args.dim, args.depth)
    else:
        model = build_model(kind, args.vocab, args.seq_len, args.dim, args.depth)
    return Stamped(model)


def window(stamped: Stamped, warmup: int) -> float:
    s = stamped.stamps
    return (s[-1] - s[warmup]) / (len(s) - 1 - warmup)


def run_raw(kind, args, batches, fallback, device) -> float:
    stamped = fresh(kind, args, fallback).to(device)
    stamped.sync_at = {args.warmup, len(batches) - 1}
    head = nn.Linear(stamped.out_features, args.vocab).to(device)
    params = list(stamped.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4, fused=device.type == "cuda")
    task = NextToken(args.vocab)
    dtype = torch.bfloat16
    for batch in batches:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype):
            loss = task.loss(head(stamped(batch["inputs"])), batch)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return window(stamped, args.warmup)


def is_mode_notice(warning: warnings.WarningMessage) -> bool:
    """torch's one-time notice that the sync debug mode exists, not a synchronisation."""
    return "debug mode is a prototype feature" in str(warning.message)


class SyncWatch:
    """A Lightning callback that turns the CUDA sync debug mode on for steady-state steps
    (not logging steps, not the first or last batch) and counts the warnings."""

    def __new__(cls, every: int, n: int):
        import lightning as L

        class _Watch(L.Callback):
            def __init__(self) -> None:
                self.checked = 0
                self.warned: list[str] = []
                self._catch = None

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                if (batch_idx + 1) % every and 0 < batch_idx < n - 1:
                    self._catch = warnings.catch_warnings(record=True)
                    self._log = self._catch.__enter__()
                    warnings.simplefilter("always")
                    torch.cuda.set_sync_debug_mode("warn")
                    self.checked += 1

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                if self._catch is not None:
                    torch.cuda.set_sync_debug_mode(0)
                    self._catch.__exit__(None, None, None)
                    self.warned += [
                        f"batch {batch_idx}: {w.message}"[:300]
                        for w in self._log
                        if "synchroniz" in str(w.message).lower() and not is_mode_notice(w)
                    ]
                    self._catch = None

        return _Watch()


def run_hlt(kind, args, batches, fallback, device, sync_check=False) -> tuple[float, Any]:
    import lightning as L
    from torch.utils.data import DataLoader

    from hlt_core.training.module import TaskModule
    from hlt_core.training.performance import ProgressBar

    stamped = fresh(kind, args, fallback)
    stamped.sync_at = {args.warmup, len(batches) - 1}
    module = TaskModule(
        stamped,
        NextToken(args.vocab),
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-4, fused=device.type == "cuda"),
    )
    callbacks: list[Any] = [ProgressBar(refresh_rate=args.log_every)]
    watch = SyncWatch(args.log_every, len(batches)) if sync_check else None
    if watch is not None:
        callbacks.append(watch)
    trainer = L.Trainer(
        accelerator=device.type,
        devices=1,
        precision="bf16-mixed",
        max_epochs=1,
        log_every_n_steps=args.log_every,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=True,
        callbacks=callbacks,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    loader = DataLoader(batches, batch_size=None)
    with contextlib.redirect_stdout(sys.stderr):  # the bar writes to stdout; keep JSON clean
        trainer.fit(module, loader)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return window(stamped, args.warmup), watch


# ----------------------------------------------------------------------------- main
def section(name: str):
    def deco(fn):
        def inner(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            except Exception as error:  # keep going: one shot on the device
                RESULT["errors"][name] = "".join(
                    traceback.format_exception_only(type(error), error)
                ).strip()[-2000:]
                RESULT["errors"][name + "/trace"] = traceback.format_exc()[-3000:]
            finally:
                RESULT.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t0, 1)

        return inner

    return deco


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny sizes; runs on CPU too")
    parser.add_argument("--models", nargs="+", default=["transformer", "hyena"])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--budget-s", type=float, default=270.0, help="skip work past this")
    args = parser.parse_args()
    if args.quick:
        args.dim, args.depth, args.seq_len, args.batch, args.vocab = 64, 2, 64, 4, 128
        args.steps, args.warmup, args.repeats, args.log_every = 30, 5, 1, 10
    start = time.perf_counter()
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    import logging

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor()
    peak = args.peak_tflops
    if peak is None:
        peak = 989.0 if any(k in name for k in ("H100", "H200", "H800", "GH200")) else None
    RESULT["machine"] = {
        "device": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "peak_bf16_tflops": peak,
        "python": sys.version.split()[0],
    }
    RESULT["config"] = {k: v for k, v in vars(args).items()}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.set_float32_matmul_precision("high")

    fallback = False
    try:
        import hlt_models

        missing = [m for m in args.models if not hasattr(hlt_models, m.capitalize())]
        if missing:
            fallback = True
            RESULT["fallback"] = f"hlt_models lacks {missing}: measuring an MLP per position"
            args.models = ["mlp"]
    except Exception as error:
        RESULT["errors"]["import hlt_models"] = repr(error)
        fallback = True
        RESULT["fallback"] = "hlt_models not importable: measuring a plain-torch MLP"
        args.models = ["mlp"]

    models: dict[str, Any] = {}
    RESULT["models"] = models
    batches = make_batches(args.steps, args.batch, args.seq_len, args.vocab, device.type == "cuda")
    tokens_per_step = args.batch * args.seq_len

    for kind in args.models:
        entry: dict[str, Any] = {"raw_s_per_step": [], "hlt_s_per_step": []}
        models[kind] = entry

        @section(f"{kind}/size")
        def size(kind=kind, entry=entry):
            m = fresh(kind, args, fallback)
            params = sum(p.numel() for p in m.parameters()) + (m.out_features + 1) * args.vocab
            entry["parameters"] = params
            entry["flops_per_token"] = flops_per_token(
                kind, params, args.dim, args.depth, args.seq_len
            )

        size()
        for r in range(args.repeats):
            if time.perf_counter() - start > args.budget_s:
                entry["skipped"] = f"budget reached after {r} repeats"
                break
            order = ("raw", "hlt") if r % 2 == 0 else ("hlt", "raw")
            for variant in order:

                @section(f"{kind}/{variant}/{r}")
                def one(variant=variant, kind=kind, entry=entry):
                    if variant == "raw":
                        t = run_raw(kind, args, batches, fallback, device)
                    else:
                        t, _ = run_hlt(kind, args, batches, fallback, device)
                    entry[f"{variant}_s_per_step"].append(t)

                one()
        for variant in ("raw", "hlt"):
            times = sorted(entry[f"{variant}_s_per_step"])
            if not times:
                continue
            med = statistics.median(times)
            entry[f"{variant}_tokens_per_s"] = round(tokens_per_step / med)
            if peak and "flops_per_token" in entry:
                mfu = entry["flops_per_token"] * tokens_per_step / med / (peak * 1e12)
                entry[f"{variant}_mfu"] = round(mfu, 4)
        if entry.get("raw_tokens_per_s") and entry.get("hlt_tokens_per_s"):
            entry["hlt_over_raw_step_time"] = round(
                entry["raw_tokens_per_s"] / entry["hlt_tokens_per_s"], 4
            )
        print(json.dumps({kind: entry}), file=sys.stderr, flush=True)  # partial progress

    @section("sync_check")
    def sync_check():
        if device.type != "cuda":
            RESULT["sync_check"] = "skipped: no CUDA device"
            return
        kind = args.models[0]
        _, watch = run_hlt(kind, args, batches[: min(len(batches), 60)], fallback, device, True)
        RESULT["sync_check"] = {
            "model": kind,
            "steady_state_steps_checked": watch.checked,
            "sync_warnings": len(watch.warned),
            "first_warnings": watch.warned[:5],
            "ok": watch.checked > 0 and not watch.warned,
        }

    if time.perf_counter() - start < args.budget_s + 60:
        sync_check()
    else:
        RESULT["sync_check"] = "skipped: time budget"
    RESULT["total_seconds"] = round(time.perf_counter() - start, 1)
    if not any(k for k in RESULT["errors"] if not k.endswith("/trace")):
        RESULT.pop("errors")
    print(json.dumps(RESULT, indent=2), flush=True)


if __name__ == "__main__":
    main()
