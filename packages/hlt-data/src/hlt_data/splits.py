"""Deterministic train/val/test splits of examples by fractions and a seed."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from hlt_data.errors import DataConfigError

SPLITS = ("train", "val", "test")  # the one list of split names in hlt-data
DEFAULT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}  # the data configs' default too


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    """Fractions for exactly train, val and test, each in (0, 1), summing to 1."""
    unknown = sorted(set(fractions) - set(SPLITS))
    if unknown:
        raise DataConfigError(
            f"data.split_fractions.{unknown[0]}: unknown split; use train, val and test"
        )
    for split in SPLITS:
        if split not in fractions:
            raise DataConfigError(f"data.split_fractions.{split} is missing")
        value = fractions[split]
        if not isinstance(value, (int, float)) or not 0 < value < 1:
            raise DataConfigError(
                f"data.split_fractions.{split}={value!r} must be a number in (0, 1)"
            )
    total = sum(float(fractions[s]) for s in SPLITS)
    if abs(total - 1) > 1e-6:
        raise DataConfigError(
            f"data.split_fractions sum to {total:g} ({dict(fractions)}); they must sum to 1"
        )
    return {split: float(fractions[split]) for split in SPLITS}


def split_indices(
    num_examples: int, fractions: Mapping[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Disjoint sorted example indices per split, a pure function of (n, fractions, seed)."""
    fractions = check_fractions(fractions)
    drawn = _split(num_examples, tuple(fractions[s] for s in SPLITS), seed)
    return {split: rows.copy() for split, rows in zip(SPLITS, drawn, strict=True)}


@functools.lru_cache(maxsize=1)
def _split(num_examples: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """The draw behind ``split_indices``, kept for its next caller (a table's encoder is
    fitted on the training rows before the datamodule splits the same rows again)."""
    order = np.random.default_rng(seed).permutation(num_examples)
    counts = {s: round(f * num_examples) for s, f in zip(SPLITS, fractions, strict=True)}
    counts["train"] = num_examples - counts["val"] - counts["test"]
    # each example's split, then each split's examples in order: the sorted parts of the
    # permutation, without sorting them
    which, start = np.empty(num_examples, dtype=np.int8), 0
    for i, (split, fraction) in enumerate(zip(SPLITS, fractions, strict=True)):
        if counts[split] < 1:
            raise DataConfigError(
                f"data.split_fractions.{split}={fraction:g} of {num_examples} "
                "examples leaves that split empty"
            )
        which[order[start : start + counts[split]]] = i
        start += counts[split]
    return [np.flatnonzero(which == i) for i in range(len(SPLITS))]
