"""Targets read as the task needs them: class labels through a vocabulary fitted on the
training split, or real values with statistics fitted on the training split.

The task states what it reads (``target_type``: ``class``, ``real`` or ``none``);
``auto`` guesses from the values (strings or whole numbers are classes).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hlt_data.errors import DataConfigError

log = logging.getLogger(__name__)

TARGET_TYPES = ("auto", "class", "real", "none")
IGNORE_INDEX = -100  # per-position targets that do not count (padding)

RowName = Callable[[int], str]  # where row i of an array is, for error messages
MANY_REAL_LABELS = 20  # more distinct non-whole labels than this: surely a regression
REGRESSION_HINT = "for a number to predict, use task=regression"
TEXT_BLOCK = 1 << 16  # text labels encoded at a time (temporaries that stay in cache)


def as_numbers(values: np.ndarray) -> np.ndarray | None:
    """``values`` as float64 if every one is (or reads as) a number, else None."""
    if np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_:
        return np.asarray(values, dtype=np.float64)
    try:
        return np.asarray(values).astype(np.float64)
    except (TypeError, ValueError):
        return None


@dataclass
class TextLabels:
    """A text target column as Arrow codes it: row ``i`` holds ``words[codes[i]]``.

    Fitting and applying a label vocabulary then work on the few distinct words and the
    integer codes, not on one string per row (numpy compares, sorts and hashes strings
    many times slower). Rows are taken by indexing; numpy sees the strings."""

    codes: np.ndarray  # one index into words per row
    words: np.ndarray  # the distinct labels, fixed-width strings

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape)

    @property
    def ndim(self) -> int:
        return 1

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.words.dtype

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, key: Any) -> Any:
        """Rows as ``TextLabels``; one row as its label, as a numpy array gives it."""
        codes = self.codes[key]
        return self.words[codes] if np.ndim(codes) == 0 else TextLabels(codes, self.words)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.words[self.codes] if dtype is None else self.words[self.codes].astype(dtype)

    def tolist(self) -> list[str]:
        return self.words[self.codes].tolist()

    def present(self) -> np.ndarray:
        """Which words occur in these rows (their indices, in order)."""
        return np.flatnonzero(np.bincount(self.codes, minlength=len(self.words)))


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


def label_name(value: object) -> str:
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
    and is kept as is. Labels are kept exactly as written; labels that differ only in
    case or surrounding spaces are named in a warning (they are distinct classes).
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
    def fit(cls, labels: np.ndarray | TextLabels) -> LabelVocabulary:
        # the vocabulary depends on the distinct labels alone
        values = labels.words[labels.present()] if isinstance(labels, TextLabels) else labels
        numbers = as_numbers(values)
        if numbers is not None:
            kept = np.unique(numbers[numbers != IGNORE_INDEX])
            real = kept[np.mod(kept, 1) != 0]
            if len(kept) > MANY_REAL_LABELS and len(real):
                raise DataConfigError(
                    f"the target has {len(kept)} distinct values in the training split, "
                    f"{len(real)} not whole (e.g. {label_name(real[0])}), and classification "
                    f"reads each as a class; {REGRESSION_HINT}"
                )
            return cls([label_name(v) for v in kept])
        names = sorted({label_name(v) for v in np.unique(values)})
        alike = defaultdict(list)
        for name in names:
            alike[name.strip().casefold()].append(name)
        for group in (g for g in alike.values() if len(g) > 1):
            log.warning(
                "labels %s differ only in case or surrounding spaces; they are kept as "
                "distinct classes (fix the file if they mean one class)",
                ", ".join(map(repr, group)),
            )
        return cls(names)

    def encode(self, values: np.ndarray | TextLabels, row_name: RowName, where: str) -> np.ndarray:
        """Class indices of ``values``; a label outside the vocabulary names its row."""
        if isinstance(values, TextLabels):  # each distinct word coded once, then each row
            present = values.present()
            numbers, raw, coded = self._classes(values.words[present])
            position = np.zeros(len(values.words), dtype=np.int64)
            position[present] = np.arange(len(present))
            rows = position[values.codes]
            encoded = coded[rows]
        else:
            numbers, raw, encoded = self._classes(values)
            rows = np.arange(len(raw))
        unseen = (encoded == -1).reshape(len(encoded), -1)
        if unseen.any():
            row = int(np.flatnonzero(unseen.any(axis=1))[0])
            cells = raw.reshape(len(raw), -1)[rows[row]]
            value = label_name(cells[unseen[row]][0])
            hint = ""
            if numbers is not None and not float(cells[0]).is_integer():
                hint = f"; {REGRESSION_HINT}"
            raise DataConfigError(
                f"{where} {row_name(row)}: label '{value}' never occurs in the training "
                f"split (its labels: {', '.join(self.names[:20])}"
                f"{' ...' if len(self.names) > 20 else ''}){hint}"
            )
        return encoded

    def _classes(self, values: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """(values as numbers or None, the values as compared, their class indices or -1)."""
        numbers = as_numbers(values)
        raw = numbers if numbers is not None else np.asarray(values)
        if raw.dtype.kind == "U":
            return numbers, raw, self._text_codes(raw)
        uniques, inverse = np.unique(raw, return_inverse=True)
        codes = np.array(
            [
                IGNORE_INDEX
                if numbers is not None and u == IGNORE_INDEX
                else self.index.get(label_name(u), -1)
                for u in uniques
            ],
            dtype=np.int64,
        )
        return numbers, raw, codes[inverse.reshape(-1)].reshape(np.shape(values))

    def _text_codes(self, raw: np.ndarray) -> np.ndarray:
        """Class indices of fixed-width strings, -1 outside the vocabulary: a binary
        search in the names per value, far faster than sorting the values (a block of
        values at a time, so that a large table's temporaries stay small)."""
        names = np.array(self.names, dtype=str)
        order = np.argsort(names, kind="stable")
        ordered = names[order]
        flat = raw.reshape(-1)
        codes = np.empty(len(flat), dtype=np.int64)
        for start in range(0, len(flat), TEXT_BLOCK):
            part = flat[start : start + TEXT_BLOCK]
            where = np.minimum(np.searchsorted(ordered, part), len(names) - 1)
            codes[start : start + TEXT_BLOCK] = np.where(ordered[where] == part, order[where], -1)
        return codes.reshape(raw.shape)


def real_values(targets: np.ndarray | TextLabels, row_name: RowName, where: str) -> np.ndarray:
    """Targets as float32 for regression; a cell that is not a number names its row."""
    values = np.asarray(targets)
    numbers = as_numbers(values)
    if numbers is not None:
        return numbers.astype(np.float32)
    for row, cells in enumerate(np.asarray(values).reshape(len(values), -1)):
        for cell in cells:
            try:
                float(cell)
            except (TypeError, ValueError):
                raise DataConfigError(
                    f"{where} {row_name(row)}: target {label_name(cell)!r} is not a number "
                    "(a regression task needs numbers)"
                ) from None
    raise DataConfigError(f"{where}: targets are not numbers")
