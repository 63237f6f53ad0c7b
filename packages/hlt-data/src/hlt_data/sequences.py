"""Synthetic sequence tasks for long-sequence models, drawn a whole batch at a time.

Both tasks ask for one token: ``inputs`` is a LongTensor of tokens (B, seq_len) and
``targets`` a LongTensor (B,) holding the answer to the query at the last position.
``dims`` are ``vocab_size``, ``seq_len`` and ``num_classes`` (= ``vocab_size``: the
answer is a token, read as a class over the vocabulary).

``append_answer=True`` gives the format safari trains with (HazyResearch/safari,
``src/dataloaders/synthetics.py``): the answer is appended to the inputs, which are then
``seq_len + 1`` long, for next-token training on every position (``task=answer_lm``);
``dims`` then also state ``answer_length: 1``, the trailing tokens to score.
"""

from __future__ import annotations

import torch

from hlt_data.batch import INPUTS, TARGETS, Batch
from hlt_data.errors import DataConfigError


def sequence_dims(vocab_size: int, seq_len: int, append_answer: bool) -> dict[str, int]:
    """The dims of a one-token-answer task; the inputs are longer by the appended answer."""
    if append_answer:
        return {"vocab_size": vocab_size, "seq_len": seq_len + 1, "answer_length": 1}
    return {"vocab_size": vocab_size, "seq_len": seq_len, "num_classes": vocab_size}


def answered(inputs: torch.Tensor, answer: torch.Tensor, append_answer: bool) -> Batch:
    if append_answer:
        inputs = torch.cat([inputs, answer.unsqueeze(1)], dim=1)
    return {INPUTS: inputs, TARGETS: answer}


class AssociativeRecall:
    """Key-value pairs, then a key: answer the value it was paired with.

    Token 0 is padding (first position when ``seq_len`` is even); keys are tokens
    ``1 .. num_keys`` and values the remaining ``num_keys+1 .. vocab_size-1``, with
    ``num_keys = (vocab_size - 1) // 2``. Each sequence has its own random key->value
    map; ``(seq_len - 1) // 2`` pairs draw keys with replacement (so the vocabulary can
    be much smaller than the sequence) and always agree with the map. The query is a
    key that occurs in the sequence.
    """

    def __init__(
        self, vocab_size: int = 16, seq_len: int = 65, append_answer: bool = False
    ) -> None:
        if vocab_size < 5:
            raise DataConfigError(f"AssociativeRecall needs vocab_size >= 5, got {vocab_size}")
        if seq_len < 3:
            raise DataConfigError(f"AssociativeRecall needs seq_len >= 3, got {seq_len}")
        self.num_keys = (vocab_size - 1) // 2
        self.num_values = vocab_size - 1 - self.num_keys
        self.num_pairs = (seq_len - 1) // 2
        self.seq_len = seq_len
        self.append_answer = append_answer
        self.dims = sequence_dims(vocab_size, seq_len, append_answer)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        b, n = batch_size, self.num_pairs
        mapping = torch.randint(self.num_values, (b, self.num_keys), generator=generator)
        keys = torch.randint(self.num_keys, (b, n), generator=generator)
        values = mapping.gather(1, keys)
        which = torch.randint(n, (b, 1), generator=generator)
        query = keys.gather(1, which)
        answer = mapping.gather(1, query).squeeze(1)
        pairs = torch.stack([keys + 1, values + 1 + self.num_keys], dim=2).reshape(b, 2 * n)
        parts = [pairs, query + 1]
        if self.seq_len % 2 == 0:
            parts.insert(0, torch.zeros(b, 1, dtype=torch.long))
        return answered(torch.cat(parts, dim=1), answer + 1 + self.num_keys, self.append_answer)


class InductionHeads:
    """Random tokens with a trigger token once inside and once at the end: answer the
    token that followed the trigger inside.

    The trigger is token ``vocab_size - 1``; the other tokens are drawn uniformly from
    ``0 .. vocab_size - 2``, so the trigger occurs exactly twice.
    """

    def __init__(
        self, vocab_size: int = 16, seq_len: int = 64, append_answer: bool = False
    ) -> None:
        if vocab_size < 3:
            raise DataConfigError(f"InductionHeads needs vocab_size >= 3, got {vocab_size}")
        if seq_len < 4:
            raise DataConfigError(f"InductionHeads needs seq_len >= 4, got {seq_len}")
        self.trigger = vocab_size - 1
        self.seq_len = seq_len
        self.append_answer = append_answer
        self.dims = sequence_dims(vocab_size, seq_len, append_answer)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        seq_len = self.seq_len
        tokens = torch.randint(self.trigger, (batch_size, seq_len), generator=generator)
        where = torch.randint(seq_len - 2, (batch_size, 1), generator=generator)
        tokens.scatter_(1, where, self.trigger)
        tokens[:, -1] = self.trigger
        return answered(tokens, tokens.gather(1, where + 1).squeeze(1), self.append_answer)
