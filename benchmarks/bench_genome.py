"""data=genome at hg38 scale against a raw memmap loop, as JSON.

    uv run benchmarks/bench_genome.py [--small] [--workdir DIR] [--steps 40] [--skip-long]

Writes (once, kept in ``--workdir``) a generated FASTA the size of hg38: 24 records,
3.1 Gbp in all, 60-base lines, N runs (10 kbp at each end, 1 Mbp inside each record)
and soft-masked lowercase runs over about half of it (``--small``: 1/100 of that). Then:

- ``cache``: the one-time byte cache build (seconds, GB/s), reported apart;
- ``run``: ``apps/trainer data=genome task=language_model model=hyena`` with
  ``seq_len=1024``, batch 64, as a user runs it: seconds from launch to the end of the
  first training step (goal <= 30), the run's peak RSS (goal <= 2 GB) and steady-state
  batches/s after ``--warmup`` steps (and CPU seconds a batch);
- ``raw``: the floor: a plain torch loop that slices the same windows (the run's own
  training order) from a numpy memmap of the cache and trains the same model and loss;
  measured before and after the run, the faster counts (goal: run >= 0.8x raw).
  ``run_vs_raw_cpu`` is the same ratio in CPU time a batch, which the other jobs of a
  shared machine leave alone where they move wall-clock rates by tens of percent;
- ``megabase``: one 1 Mbp window through Hyena (batch 1, checkpointing on), trained for
  two steps on CPU: seconds per step and peak RSS;
- ``checkpointing``: peak RSS of one Hyena training step at 16k and 64k bases, with and
  without ``checkpoint_activations``, each in a fresh process.

``--skip-long`` leaves out the last two (the megabase steps take minutes on a CPU).

Every measurement runs on one thread (``OMP_NUM_THREADS=1``): on a shared 2-core
machine two threads per process mostly wait for each other. The machine's load
(``os.getloadavg``) is printed with the figures: there, the speed ratio is the figure to
read, the absolute rates are not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RECORDS, FULL_BASES, WIDTH = 24, 3_100_000_000, 60
MODEL = {"dim": 32, "depth": 2}  # small, so that the data path shows in the rate
SEQ_LEN, BATCH = 1024, 64


def memory_gb(field: str = "VmHWM") -> float:
    """A memory figure of this process from ``/proc/self/status``, in GB: by default the
    peak RSS (``VmHWM``: unlike ``ru_maxrss``, not inherited from the parent that forked
    it); ``RssAnon`` and ``RssFile`` split the current RSS into the process's own memory
    and mapped files (shared libraries' pages: torch's alone are about 0.35 GB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1e6  # kB
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def peak_rss_gb() -> float:
    return memory_gb("VmHWM")


def record_lengths(total: int) -> list[int]:
    """24 lengths falling from 2x to 0.5x the mean (chromosome-like), summing to total."""
    weights = np.linspace(2.0, 0.5, RECORDS)
    lengths = (weights / weights.sum() * total).astype(np.int64)
    lengths[0] += total - lengths.sum()
    return lengths.tolist()


def write_record(out, length: int, rng: np.random.Generator, gap: int, centre: int) -> None:
    """One record's lines, generated in blocks: random ACGT, lowercase runs, N runs."""
    block = WIDTH * 65536
    for start in range(0, length, block):
        n = min(block, length - start)
        bases = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, n, dtype=np.uint8)]
        runs = rng.geometric(1 / 300, size=n // 150 + 2)  # alternate upper/lower runs
        flags = np.repeat(np.arange(len(runs)) % 2 == 1, runs)[:n]
        lower = np.zeros(n, dtype=np.uint8)
        lower[: len(flags)] = flags
        bases = bases + 32 * lower
        where = np.arange(start, start + n)
        bases[(where < gap) | (where >= length - gap)] = ord("N")
        bases[(where >= length // 2) & (where < length // 2 + centre)] = ord("N")
        full = len(bases) // WIDTH * WIDTH
        lines = np.hstack(
            [bases[:full].reshape(-1, WIDTH), np.full((full // WIDTH, 1), 10, np.uint8)]
        )
        out.write(lines.tobytes())
        if full < len(bases):
            out.write(bases[full:].tobytes() + b"\n")


def generate(path: Path, total: int) -> dict[str, float]:
    if path.exists():
        return {"reused": True}
    start = time.perf_counter()
    scale = total / FULL_BASES
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        for i, length in enumerate(record_lengths(total)):
            out.write(f">chr{i + 1} generated\n".encode())
            write_record(out, length, rng, gap=int(10_000 * scale), centre=int(1_000_000 * scale))
    tmp.rename(path)
    return {"seconds": time.perf_counter() - start, "gb": path.stat().st_size / 1e9}


def build_cache(path: Path) -> dict[str, float]:
    from hlt_data.genome_cache import GenomeCache, cache_folder

    fresh = not (cache_folder(path, None) / "index.json").exists()
    start = time.perf_counter()
    GenomeCache(path)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "built": fresh, "gb_per_s": path.stat().st_size / 1e9 / seconds}


def datamodule(path: Path, **options):
    from hlt_data import GenomeDataModule

    options = {"seq_len": SEQ_LEN, "batch_size": BATCH, "val_chroms": ["chr23"],
               "test_chroms": ["chr24"], "seed": 42} | options  # fmt: skip
    return GenomeDataModule(path, **options)


def lm_parts(seq_len: int, **model_options):
    from hlt_models import Hyena
    from hlt_tasks import LanguageModelTask

    torch.manual_seed(0)
    model = Hyena(vocab_size=7, max_len=seq_len, **(MODEL | model_options))
    task = LanguageModelTask(vocab_size=7)
    decoder = task.build_decoder(model.out_features)
    params = [*model.parameters(), *decoder.parameters()]
    return model, task, decoder, torch.optim.AdamW(params, lr=1e-3)


def rates(wall: list[float], cpu: list[float], warmup: int) -> dict[str, float]:
    """Steady-state batches/s (wall clock) and CPU seconds a batch, from per-step stamps."""
    steps = len(wall) - 1 - warmup
    return {
        "batches_per_s": steps / (wall[-1] - wall[warmup]),
        "cpu_s_per_batch": (cpu[-1] - cpu[warmup]) / steps,
    }


def raw_loop(path: Path, steps: int, warmup: int) -> dict[str, float]:
    """The floor: memmap slices of the run's windows, same model and loss."""
    from hlt_data.genome import TOKENIZER, _tables

    dm = datamodule(path)
    windows, order = dm.windows["train"], dm.dataset("train").order(0)
    bases = np.memmap(dm.cache.folder / "bases.u8", dtype=np.uint8, mode="r")
    tokens, counted, _ = _tables(False)
    model, task, decoder, optimizer = lm_parts(SEQ_LEN)
    assert TOKENIZER.vocab_size == 7
    stamps: list[float] = []
    cpu: list[float] = []
    for step in range(steps):
        starts = windows.start[order[step * BATCH : (step + 1) * BATCH]]
        raw = np.stack([bases[s : s + SEQ_LEN] for s in starts.tolist()])
        batch = {"inputs": torch.from_numpy(tokens[raw]), "mask": torch.from_numpy(counted[raw])}
        loss = task.loss(decoder(model(batch["inputs"])), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
    return rates(stamps, cpu, warmup)


class StepClock(L.Callback):
    """A trainer callback (``+callbacks.clock._target_=bench_genome.StepClock``): the wall
    time after each training step and the peak RSS, written to ``path`` at the end."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.stamps: list[float] = []
        self.cpu: list[float] = []

    def on_train_batch_end(self, *args: object, **kwargs: object) -> None:
        self.stamps.append(time.time())
        self.cpu.append(time.process_time())

    def on_train_end(self, *args: object, **kwargs: object) -> None:
        memory = {f"{field}_gb": memory_gb(field) for field in ("RssAnon", "RssFile")}
        self.path.write_text(
            json.dumps({"stamps": self.stamps, "cpu": self.cpu, "rss_gb": peak_rss_gb()} | memory)
        )


def hlt_run(path: Path, workdir: Path, steps: int, warmup: int) -> dict[str, float]:
    clock = workdir / "clock.json"
    args = [
        "data=genome", f"data.path={path}", f"data.seq_len={SEQ_LEN}", f"data.batch_size={BATCH}",
        "data.val_chroms=[chr23]", "data.test_chroms=[chr24]", "task=language_model",
        "model=hyena", *(f"model.{k}={v}" for k, v in MODEL.items()), "optimizer.lr=0.001",
        f"trainer.max_steps={steps}", "trainer.limit_val_batches=0", "test=false",
        "print_config=false", "logger=none", "trainer.enable_progress_bar=false",
        f"hydra.run.dir={workdir / 'run'}", "+callbacks.clock._target_=bench_genome.StepClock",
        f"+callbacks.clock.path={clock}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "benchmarks"), "OMP_NUM_THREADS": "1"}
    launched = time.time()
    done = subprocess.run([sys.executable, str(REPO / "apps" / "trainer"), *args], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    seen = json.loads(clock.read_text())
    stamps = seen["stamps"]
    return {
        "first_step_s": stamps[0] - launched,
        "peak_rss_gb": seen["rss_gb"],
        "at_end_anon_gb": seen["RssAnon_gb"],  # the process's own memory, after the last step
        "at_end_file_gb": seen["RssFile_gb"],  # mapped files (shared libraries), then
        **rates(stamps, seen["cpu"], warmup),
    }


def child(args: list[str]) -> dict[str, float]:
    """Run this script in a fresh process for one measurement (its own peak RSS)."""
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.splitlines()[-1])


def train_steps(batch: dict, steps: int, **model_options) -> dict[str, float]:
    seq_len = batch["inputs"].shape[1]
    model, task, decoder, optimizer = lm_parts(seq_len, **model_options)
    before = peak_rss_gb()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = task.loss(decoder(model(batch["inputs"])), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    peak = peak_rss_gb()
    return {
        "seconds_per_step": min(times),
        "loss": float(loss.detach()),
        "peak_rss_gb": peak,
        "step_gb": peak - before,  # what the training steps added to the process's peak
    }


def megabase(path: Path) -> dict[str, float]:
    dm = datamodule(path, seq_len=1_000_000, batch_size=1)
    batch = dm.dataset("train")[(0, 0)]
    return train_steps(batch, 2, checkpoint_activations=True) | {"bases": 1_000_000}


def checkpointing(length: int, on: bool) -> dict[str, float]:
    tokens = torch.randint(2, 6, (1, length), generator=torch.Generator().manual_seed(0))
    batch = {"inputs": tokens, "mask": torch.ones_like(tokens, dtype=torch.bool)}
    return train_steps(batch, 1, dim=128, depth=4, checkpoint_activations=on)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1/100 of hg38's size")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/hlt-bench-genome"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--skip-long", action="store_true", help="leave out megabase and checkpointing"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)  # every measurement on one thread (see the docstring)
    if args.child:
        kind, *rest = args.child
        if kind == "megabase":
            print(json.dumps(megabase(Path(rest[0]))))
        else:
            print(json.dumps(checkpointing(int(rest[0]), rest[1] == "on")))
        return
    total = FULL_BASES // 100 if args.small else FULL_BASES
    args.workdir.mkdir(parents=True, exist_ok=True)
    fasta = args.workdir / f"genome-{total // 1_000_000}M.fa"
    report: dict = {"bases": total, "records": RECORDS, "fasta": str(fasta)}
    report["generate"] = generate(fasta, total)
    report["cache"] = build_cache(fasta)
    raw_before = raw_loop(fasta, args.steps, args.warmup)
    report["run"] = hlt_run(fasta, args.workdir, args.steps, args.warmup)
    raw_after = raw_loop(fasta, args.steps, args.warmup)
    report["raw"] = {
        "batches_per_s": max(raw_before["batches_per_s"], raw_after["batches_per_s"]),
        "cpu_s_per_batch": min(raw_before["cpu_s_per_batch"], raw_after["cpu_s_per_batch"]),
        "before": raw_before,
        "after": raw_after,
    }
    report["run_vs_raw"] = report["run"]["batches_per_s"] / report["raw"]["batches_per_s"]
    # the same ratio in CPU time: what the other sessions' load does to wall time cancels
    report["run_vs_raw_cpu"] = report["raw"]["cpu_s_per_batch"] / report["run"]["cpu_s_per_batch"]
    if not args.skip_long:
        report["megabase"] = child(["--child", "megabase", str(fasta)])
        report["checkpointing"] = {
            f"{length // 1024}k_{state}": child(["--child", "memory", str(length), state])
            for length in (16384, 65536)
            for state in ("off", "on")
        }
    report["goals"] = {
        "first_step_le_30s": report["run"]["first_step_s"] <= 30,
        "peak_rss_le_2gb": report["run"]["peak_rss_gb"] <= 2,
        "run_ge_0.8x_raw": report["run_vs_raw"] >= 0.8,
    }
    report["machine"] = {"cpu": platform.processor() or platform.machine(),
                         "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                         "load_1_5_15": os.getloadavg()}  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
