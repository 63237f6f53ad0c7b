"""Tokenizers that turn text or biological sequences into token ids."""

from __future__ import annotations

import numpy as np

from hlt_data.errors import DataConfigError


class CharTokenizer:
    """One token per character of ``alphabet``; id 0 is padding, 1 is unknown.

    ``vocab_size`` is ``len(alphabet) + 2``. Unless ``case_sensitive``, ``ACGT`` also
    matches ``acgt``.
    """

    PAD = 0
    UNKNOWN = 1

    def __init__(self, alphabet: str = "ACGTN", case_sensitive: bool = False) -> None:
        if len(set(alphabet)) != len(alphabet) or not alphabet:
            raise DataConfigError(
                f"tokenizer alphabet={alphabet!r} must be non-empty with no repeated characters"
            )
        self.alphabet = alphabet
        self.case_sensitive = case_sensitive
        self.table = np.full(256, self.UNKNOWN, dtype=np.int64)
        self.extra: dict[str, int] = {}
        for offset, char in enumerate(alphabet, start=2):
            for variant in {char} if case_sensitive else {char.lower(), char.upper()}:
                if ord(variant) < 256:
                    self.table[ord(variant)] = offset
                else:
                    self.extra[variant] = offset
        self.vocab_size = len(alphabet) + 2

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` (vectorised for Latin-1 text)."""
        if not self.extra and text.isascii():
            return self.table[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
        return np.array(
            [self.table[ord(c)] if ord(c) < 256 else self.extra.get(c, self.UNKNOWN) for c in text],
            dtype=np.int64,
        )
