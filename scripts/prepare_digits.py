"""Write scikit-learn's digits dataset (offline, shipped with sklearn) as .npy files.

    uv run scripts/prepare_digits.py --out data/digits

writes ``inputs.npy`` (1797, 64) float32 pixels scaled to [0, 1] and ``targets.npy``
(1797,) int64 classes, read by ``data=digits`` (``hlt_data.FileDataModule``). Each file
is written to a temporary name and renamed, so an interrupted run leaves no half file.
scikit-learn is a dev dependency of the workspace, not of hlt-data.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits


def save(path: Path, array: np.ndarray) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        np.save(handle, array)
    os.replace(partial, path)


def write_digits(out: Path) -> int:
    """Write inputs.npy (scaled to [0, 1]) and targets.npy into ``out``; returns the count."""
    digits = load_digits()
    out.mkdir(parents=True, exist_ok=True)
    save(out / "inputs.npy", (digits.data / 16.0).astype(np.float32))
    save(out / "targets.npy", digits.target.astype(np.int64))
    return len(digits.target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/digits"), help="output folder")
    args = parser.parse_args(argv)
    count = write_digits(args.out)
    print(f"wrote {count} digits to {args.out}/inputs.npy and targets.npy")


if __name__ == "__main__":
    main()
