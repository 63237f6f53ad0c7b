"""data=genome with the language-model task: N counts in no loss or metric, an all-N
batch is no NaN, and a genome run trains end to end through the documented config."""

from __future__ import annotations

import csv
import json

import numpy as np
import torch

import prepare_genome
from helpers import compose_run
from hlt_core.run import run
from hlt_data import GenomeDataModule
from hlt_data.batch import INPUTS, MASK
from hlt_models import Hyena
from hlt_tasks import LanguageModelTask


def write_genome(path, records):
    path.write_text("".join(f">{name}\n{sequence}\n" for name, sequence in records.items()))
    return path


def bases(length, seed):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), length))


def scores(path, seq_len, logits):
    """Loss, perplexity and accuracy of context-free ``logits`` on record ``a``'s window."""
    dm = GenomeDataModule(path, seq_len=seq_len, batch_size=1, val_chroms=["b"], test_chroms=["c"])
    batch = dm.dataset("train")[(0, 0)]
    task = LanguageModelTask(vocab_size=dm.dims["vocab_size"])
    outputs = logits.expand(1, seq_len, -1)
    metrics = task.metrics("")
    metrics.update(*task.metric_inputs(outputs, batch))
    values = {name: float(value) for name, value in metrics.compute().items()}
    return float(task.loss(outputs, batch)), values


def test_n_runs_score_as_if_they_were_not_there(tmp_path):
    called = bases(200, 0)
    with_n = called[:50] + "N" * 30 + called[50:120] + "NNRYN" * 4 + called[120:]
    others = {"b": bases(300, 1), "c": bases(300, 2)}
    logits = torch.log(torch.tensor([1e-3, 1e-3, 0.1, 0.2, 0.3, 0.39, 1e-3]))
    gapped = scores(write_genome(tmp_path / "n.fa", {"a": with_n, **others}), 250, logits)
    plain = scores(write_genome(tmp_path / "plain.fa", {"a": called, **others}), 200, logits)
    assert gapped[0] == plain[0] and gapped[1] == plain[1]
    # and N is not free: scoring it would move the perplexity well away
    assert abs(gapped[1]["ppl"] - 1 / 0.25) > 0.1


def test_an_all_n_batch_gives_a_finite_loss_and_gradients():
    model = Hyena(vocab_size=7, dim=16, depth=1, max_len=32)
    task = LanguageModelTask(vocab_size=7)
    decoder = task.build_decoder(model.out_features)
    batch = {INPUTS: torch.full((2, 32), 6), MASK: torch.zeros(2, 32, dtype=torch.bool)}
    loss = task.loss(decoder(model(batch[INPUTS])), batch)
    loss.backward()
    assert loss.item() == 0.0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_a_genome_run_trains_and_validates_by_steps(tmp_path, run_dir):
    records = {"chr1": bases(4000, 0), "chr2": "N" * 500 + bases(1500, 1), "chr3": bases(2000, 2)}
    fasta = write_genome(tmp_path / "genome.fa", records)
    overrides = [
        "data=genome",
        f"data.path={fasta}",
        "data.seq_len=128",
        "data.batch_size=4",
        "data.val_chroms=[chr2]",
        "data.test_chroms=[chr3]",
        "data.rc_aug=true",
        "task=language_model",
        "model=hyena",
        "model.dim=16",
        "model.depth=1",
        "trainer.max_steps=4",
        "trainer.val_check_interval=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "trainer.enable_progress_bar=false",
        "print_config=false",
    ]
    cfg = compose_run(overrides, run_dir)
    run(cfg)
    assert cfg.data.dims.seq_len == 128 and cfg.data.dims.vocab_size == 7
    results = json.loads((run_dir / "results.json").read_text())
    assert 1 < results["test/ppl"] < 7
    (log,) = run_dir.rglob("metrics.csv")
    validations = [row for row in csv.DictReader(log.open()) if row.get("val/loss")]
    # at steps 2 and 4, inside the first epoch of 7 batches (then the best checkpoint's)
    assert [row["epoch"] for row in validations[:2]] == ["0", "0"]


def test_the_prepared_genome_states_its_chain_entropy_floor(tmp_path):
    """The floor computed from the chain matches the entropy measured on a long sample."""
    probs = prepare_genome.transitions(order=2, bias=0.7, seed=3)
    floor = prepare_genome.entropy_floor(probs, order=2)
    bases = prepare_genome.sample(probs, 2, 300_000, np.random.default_rng(0))
    context = bases[:-2].astype(np.int64) * 4 + bases[1:-1]
    counts = np.zeros((16, 4))
    np.add.at(counts, (context, bases[2:]), 1)
    conditional = counts / counts.sum(axis=1, keepdims=True)
    measured = -(counts * np.log(conditional)).sum() / counts.sum()
    assert abs(measured - floor["nats_per_base"]) < 0.005
    assert 1 < floor["perplexity"] < 4  # skewed: well below uniform DNA's 4
