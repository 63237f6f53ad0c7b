"""A stand-in associative-recall sampler for measuring the swap experiments before
hlt-data's own (issue 3) is merged. Not part of any package.

A sequence ``k1 v1 k2 v2 ... kn vn q`` of distinct keys (first half of the vocabulary)
and values (second half) ends with a query key ``q``; the target is the value paired
with ``q`` (one token per example, shape ``(B,)``).
"""

from __future__ import annotations

import torch


class AssociativeRecall:
    def __init__(self, vocab_size: int = 32, num_pairs: int = 8) -> None:
        if vocab_size // 2 < num_pairs:
            raise ValueError(f"need vocab_size/2 >= num_pairs, got {vocab_size}, {num_pairs}")
        self.vocab_size = vocab_size
        self.num_pairs = num_pairs
        self.dims = {
            "vocab_size": vocab_size,
            "seq_len": 2 * num_pairs + 1,
            "num_classes": vocab_size,
        }

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        half = self.vocab_size // 2
        scores = torch.rand(batch_size, half, generator=generator)
        keys = scores.argsort(dim=1)[:, : self.num_pairs]
        values = torch.randint(half, (batch_size, self.num_pairs), generator=generator) + half
        pick = torch.randint(self.num_pairs, (batch_size, 1), generator=generator)
        pairs = torch.stack([keys, values], dim=2).reshape(batch_size, -1)
        inputs = torch.cat([pairs, keys.gather(1, pick)], dim=1)
        return {"inputs": inputs, "targets": values.gather(1, pick).squeeze(1)}
