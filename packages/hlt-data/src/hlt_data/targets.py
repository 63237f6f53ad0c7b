"""Targets read as the task needs them: class labels through a vocabulary fitted on the
training split, or real values with statistics fitted on the training split.

The task states what it reads (``target_type``: ``class``, ``real`` or ``none``);
``auto`` guesses from the values (strings or whole numbers are classes).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hlt_data.errors import DataConfigError

TARGET_TYPES = ("auto", "class", "real", "none")
IGNORE_INDEX = -100  # per-position targets that do not count (padding)

RowName = Callable[[int], str]  # where row i of an array is, for error messages


def as_numbers(values: np.ndarray) -> np.ndarray | None:
    """``values`` as float64 if every one is (or reads as) a number, else None."""
    if np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_:
        return np.asarray(values, dtype=np.float64)
    try:
        return np.asarray(values).astype(np.float64)
    except (TypeError, ValueError):
        return None


def resolve_target_type(target_type: str, sample: np.ndarray | None) -> str:
    """``target_type`` checked, with ``auto`` decided from a sample of the raw targets."""
    if target_type not in TARGET_TYPES:
        raise DataConfigError(
            f"data.target_type={target_type!r} is unknown; choose one of {list(TARGET_TYPES)}"
        )
    if target_type != "auto":
        return target_type
    if sample is None:
        return "none"
    numbers = as_numbers(sample)
    if numbers is None:
        return "class"
    return "class" if np.all(np.mod(numbers[np.isfinite(numbers)], 1) == 0) else "real"


def _name(value: object) -> str:
    """A label's name: whole numbers without a decimal point (``3``, not ``3.0``)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode()
    return str(value)


class LabelVocabulary:
    """Class names in a fixed order; class ``i`` is ``names[i]``.

    Fitted on the training split: numeric order when every label is a number, else
    string order. ``IGNORE_INDEX`` (-100) marks per-position targets that do not count
    and is kept as is.
    """

    def __init__(self, names: list[str]) -> None:
        if len(names) < 2:
            raise DataConfigError(
                f"the training split has {len(names)} distinct label(s) {names}; "
                "classification needs at least 2"
            )
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}

    @classmethod
    def fit(cls, values: np.ndarray) -> LabelVocabulary:
        numbers = as_numbers(values)
        if numbers is not None:
            kept = np.unique(numbers[numbers != IGNORE_INDEX])
            return cls([_name(v) for v in kept])
        return cls(sorted({_name(v) for v in np.unique(values)}))

    def encode(self, values: np.ndarray, row_name: RowName, where: str) -> np.ndarray:
        """Class indices of ``values``; a label outside the vocabulary names its row."""
        numbers = as_numbers(values)
        raw = numbers if numbers is not None else np.asarray(values)
        uniques, inverse = np.unique(raw, return_inverse=True)
        codes = np.array(
            [
                IGNORE_INDEX
                if numbers is not None and u == IGNORE_INDEX
                else self.index.get(_name(u), -1)
                for u in uniques
            ],
            dtype=np.int64,
        )
        encoded = codes[inverse.reshape(-1)].reshape(np.shape(values))
        unseen = (encoded == -1).reshape(len(raw), -1)
        if unseen.any():
            row = int(np.flatnonzero(unseen.any(axis=1))[0])
            value = _name(raw.reshape(len(raw), -1)[row][unseen[row]][0])
            raise DataConfigError(
                f"{where} {row_name(row)}: label '{value}' never occurs in the training "
                f"split (its labels: {', '.join(self.names[:20])}"
                f"{' ...' if len(self.names) > 20 else ''})"
            )
        return encoded


def real_values(values: np.ndarray, row_name: RowName, where: str) -> np.ndarray:
    """Targets as float32 for regression; a cell that is not a number names its row."""
    numbers = as_numbers(values)
    if numbers is not None:
        return numbers.astype(np.float32)
    for row, cells in enumerate(np.asarray(values).reshape(len(values), -1)):
        for cell in cells:
            try:
                float(cell)
            except (TypeError, ValueError):
                raise DataConfigError(
                    f"{where} {row_name(row)}: target {_name(cell)!r} is not a number "
                    "(a regression task needs numbers)"
                ) from None
    raise DataConfigError(f"{where}: targets are not numbers")
