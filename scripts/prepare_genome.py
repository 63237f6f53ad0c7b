"""Write a genome drawn from a known Markov chain, with its entropy floor, and labelled
windows for fine-tuning.

    uv run scripts/prepare_genome.py --out data/genome

writes

- ``genome.fa``: ``--chroms`` records of ``--length`` bases from an order-``--order``
  Markov chain over ACGT (each context favours one base with probability ``--bias``,
  the other three share the rest unevenly), 60-base lines, N runs (at each end and one
  inside each record; the chain restarts after each) and lowercase (soft-masked) runs;
- ``floor.json``: the chain's entropy rate (bits and nats per base) and the perplexity
  floor ``exp(nats)``, computed exactly from its stationary distribution and transition
  entropies: no model can score below it on held-out bases of the chain;
- ``finetune.fa``: 200-base windows labelled ``chain`` (drawn from the same chain) or
  ``shuffled`` (the same bases in random order: the same composition, no chain): telling
  them apart needs what a model pretrained on the genome has learnt.

``experiment=genome_hyena`` pretrains on ``genome.fa`` (chr4 validates, chr5 tests);
``experiment=genome_finetune model.init_from=<its run>`` fine-tunes on ``finetune.fa``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
WIDTH = 60


def transitions(order: int, bias: float, seed: int) -> np.ndarray:
    """``(4**order, 4)`` next-base probabilities: one favoured base per context with
    probability ``bias``, the rest split at random (so every context differs)."""
    rng = np.random.default_rng(seed)
    contexts = 4**order
    table = rng.dirichlet(np.ones(3), size=contexts) * (1 - bias)
    favoured = rng.integers(0, 4, contexts)
    probs = np.zeros((contexts, 4))
    for c in range(contexts):
        others = [b for b in range(4) if b != favoured[c]]
        probs[c, favoured[c]] = bias
        probs[c, others] = table[c]
    return probs


def stationary(probs: np.ndarray, order: int) -> np.ndarray:
    """The stationary distribution over contexts (the last ``order`` bases, base 4)."""
    contexts = len(probs)
    moves = np.zeros((contexts, contexts))
    for c in range(contexts):
        for base in range(4):
            moves[c, (c * 4 + base) % contexts] += probs[c, base]
    values, vectors = np.linalg.eig(moves.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    return pi / pi.sum()


def entropy_floor(probs: np.ndarray, order: int) -> dict[str, float]:
    """Entropy rate ``sum_c pi(c) H(P(.|c))``: per base, in nats and bits, and exp of it."""
    pi = stationary(probs, order)
    nats = float(-(pi[:, None] * probs * np.log(probs)).sum())
    return {
        "nats_per_base": nats,
        "bits_per_base": nats / np.log(2),
        "perplexity": float(np.exp(nats)),
    }


def sample(probs: np.ndarray, order: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """``length`` base indices (0..3) of the chain, from a uniform start."""
    contexts = len(probs)
    cumulative = np.cumsum(probs, axis=1)
    draws = rng.random(length)
    out = np.empty(length, dtype=np.uint8)
    context = int(rng.integers(contexts))
    for i in range(length):
        base = int(np.searchsorted(cumulative[context], draws[i], side="right"))
        base = min(base, 3)
        out[i] = base
        context = (context * 4 + base) % contexts
    return out


def record(probs: np.ndarray, order: int, length: int, rng: np.random.Generator) -> bytes:
    """A record: chain segments between N runs, with lowercase runs."""
    gap = max(1, length // 200)
    seq = np.full(length, ord("N"), dtype=np.uint8)
    middle = length // 2
    for lo, hi in ((gap, middle - gap // 2), (middle + gap // 2, length - gap)):
        seq[lo:hi] = BASES[sample(probs, order, hi - lo, rng)]
    runs = rng.geometric(1 / 500, size=length // 250 + 2)
    lower = np.repeat(np.arange(len(runs)) % 2 == 1, runs)[:length]
    soft = np.zeros(length, dtype=np.bool_)
    soft[: len(lower)] = lower
    soft &= seq != ord("N")
    seq[soft] += 32
    return seq.tobytes()


def fasta_lines(sequence: bytes) -> str:
    text = sequence.decode()
    return "".join(text[i : i + WIDTH] + "\n" for i in range(0, len(text), WIDTH))


def write_genome(
    out: Path,
    chroms: int = 5,
    length: int = 400_000,
    order: int = 2,
    bias: float = 0.7,
    windows: int = 600,
    seed: int = 0,
) -> dict[str, float]:
    """Write genome.fa, floor.json and finetune.fa under ``out``; return the floor."""
    out.mkdir(parents=True, exist_ok=True)
    probs = transitions(order, bias, seed)
    rng = np.random.default_rng(seed + 1)
    with open(out / "genome.fa", "w") as handle:
        for i in range(chroms):
            handle.write(f">chr{i + 1}\n" + fasta_lines(record(probs, order, length, rng)))
    floor = entropy_floor(probs, order) | {"order": order, "bias": bias, "seed": seed}
    (out / "floor.json").write_text(json.dumps(floor, indent=2) + "\n")
    with open(out / "finetune.fa", "w") as handle:
        for i in range(windows):
            bases = BASES[sample(probs, order, 200, rng)]
            label = "chain" if i % 2 == 0 else "shuffled"
            if label == "shuffled":
                bases = rng.permutation(bases)
            handle.write(f">w{i} label={label}\n{bases.tobytes().decode()}\n")
    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/genome"))
    parser.add_argument("--chroms", type=int, default=5)
    parser.add_argument("--length", type=int, default=400_000, help="bases per record")
    parser.add_argument("--order", type=int, default=2, help="bases of context of the chain")
    parser.add_argument("--bias", type=float, default=0.7, help="probability of the favoured base")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    floor = write_genome(args.out, args.chroms, args.length, args.order, args.bias, seed=args.seed)
    print(json.dumps(floor))


if __name__ == "__main__":
    main()
