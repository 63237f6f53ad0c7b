"""Write a pretrain-then-fine-tune example: DNA from two Markov families, as FASTA.

    uv run scripts/prepare_families.py --out data/families

writes ``pretrain.fa`` (unlabelled records, for ``task=language_model``) and
``finetune.fa`` (records with ``label=repeat`` or ``label=cycle`` in the header, for
``task=classification``). Every record is 60 bases from a first-order Markov chain with
uniform base frequencies; the families differ only in which base tends to follow:
``repeat`` repeats the previous base, ``cycle`` steps A->C->G->T->A (probability
``bias`` each, the other three bases share the rest). Predicting the next base needs
the family, so a language model learns features that a small labelled set can read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

BASES = "ACGT"
LENGTH = 60
FAMILIES = {"repeat": 0, "cycle": 1}  # the base favoured next: previous + 0 or + 1


def sequence(family: str, bias: float, rng: np.random.Generator) -> str:
    tokens = [int(rng.integers(4))]
    others = (1 - bias) / 3
    for _ in range(LENGTH - 1):
        favoured = (tokens[-1] + FAMILIES[family]) % 4
        weights = [bias if base == favoured else others for base in range(4)]
        tokens.append(int(rng.choice(4, p=weights)))
    return "".join(BASES[t] for t in tokens)


def write_fasta(path: Path, records: int, labelled: bool, bias: float, seed: int) -> Path:
    """``records`` sequences, families alternating; labels in headers if ``labelled``."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(records):
        family = list(FAMILIES)[i % 2]
        header = f">r{i} label={family}" if labelled else f">r{i}"
        lines += [header, sequence(family, bias, rng)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_families(out: Path, pretrain: int = 2000, finetune: int = 600, bias: float = 0.6) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_fasta(out / "pretrain.fa", pretrain, labelled=False, bias=bias, seed=0)
    write_fasta(out / "finetune.fa", finetune, labelled=True, bias=bias, seed=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/families"))
    write_families(parser.parse_args().out)


if __name__ == "__main__":
    main()
