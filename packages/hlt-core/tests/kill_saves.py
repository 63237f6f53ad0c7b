"""Fault injection for checkpoint saves: ``python kill_saves.py FOLDER KILLS [IO CLASS]``.

Saves a 32 MB checkpoint to ``FOLDER/last.ckpt`` over and over in a forked child,
SIGKILLs the child at a random moment ``KILLS`` times, and after each kill tries to load
``last.ckpt``. Prints ``{"kills", "loadable", "partial"}`` as JSON (``partial``: the
temporary files the kills left behind). Run it with ``TMPDIR`` on another filesystem.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import torch

WIDTH = 4096


def main(folder: Path, kills: int, io_class: str) -> None:
    module, _, name = io_class.rpartition(".")
    io = getattr(importlib.import_module(module), name)()
    target = folder / "last.ckpt"
    checkpoint = {"state_dict": {"weight": torch.randn(2 * 1024, WIDTH)}, "step": 0}
    io.save_checkpoint(checkpoint, target)  # one good checkpoint to lose
    pause = random.Random(0)
    loadable = 0
    for _ in range(kills):
        child = os.fork()
        if child == 0:
            for step in range(1, 1_000_000):
                io.save_checkpoint({**checkpoint, "step": step}, target)
            os._exit(0)
        time.sleep(pause.uniform(0.3, 1.0))
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        try:
            saved = torch.load(target, weights_only=True)
            loadable += saved["state_dict"]["weight"].shape == (2 * 1024, WIDTH)
        except Exception:  # truncated: what this script looks for
            pass
    partial = len([p for p in folder.iterdir() if p.name.startswith(".")])
    print(json.dumps({"kills": kills, "loadable": loadable, "partial": partial}))


if __name__ == "__main__":
    io_class = sys.argv[3] if len(sys.argv) > 3 else "hlt_core.storing.atomic.AtomicCheckpointIO"
    main(Path(sys.argv[1]), int(sys.argv[2]), io_class)
