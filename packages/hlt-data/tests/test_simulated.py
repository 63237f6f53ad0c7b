from types import SimpleNamespace

import pytest
import torch

from hlt_data import (
    AssociativeRecall,
    DataConfigError,
    GaussianClusters,
    InductionHeads,
    RegressionFunction,
    SimulatedDataModule,
)
from hlt_data.batch import INPUTS, TARGETS


def _batches(loader, epoch=0):
    loader.sampler.set_epoch(epoch)
    return list(loader)


def _dm(**kwargs):
    options = {"batch_size": 8, "train_batches": 4, "val_batches": 2, "test_batches": 2}
    options.update(kwargs)
    return SimulatedDataModule(GaussianClusters(input_dim=5, num_classes=3), seed=1, **options)


def _equal(a, b):
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        for x, y in zip(a, b, strict=True)
    )


def test_batches_have_the_documented_structure():
    batch = next(iter(_dm().train_dataloader()))
    assert set(batch) == {INPUTS, TARGETS}
    assert batch[INPUTS].shape == (8, 5)
    assert batch[TARGETS].dtype == torch.int64
    assert int(batch[TARGETS].max()) < 3


def test_same_seed_gives_identical_batches():
    assert _equal(_batches(_dm().train_dataloader()), _batches(_dm().train_dataloader()))
    other = SimulatedDataModule(GaussianClusters(5, 3), batch_size=8, train_batches=4, seed=2)
    assert not _equal(_batches(_dm().train_dataloader()), _batches(other.train_dataloader()))


def test_splits_and_epochs_differ_but_val_and_test_are_fixed():
    dm = _dm()
    train0 = _batches(dm.train_dataloader(), 0)[0][INPUTS]
    train1 = _batches(dm.train_dataloader(), 1)[0][INPUTS]
    val0 = _batches(dm.val_dataloader(), 0)[0][INPUTS]
    val1 = _batches(dm.val_dataloader(), 1)[0][INPUTS]
    test0 = _batches(dm.test_dataloader(), 0)[0][INPUTS]
    test3 = _batches(dm.test_dataloader(), 3)[0][INPUTS]
    assert not torch.equal(train0, train1)
    assert not torch.equal(train0, val0)
    assert not torch.equal(val0, test0)
    assert torch.equal(val0, val1)
    assert torch.equal(test0, test3)


def test_epoch_length_is_configurable():
    assert len(_batches(_dm(train_batches=7).train_dataloader())) == 7


def test_workers_read_different_batches_and_the_same_stream():
    single = _batches(_dm(train_batches=6).train_dataloader(), 1)
    workers = _batches(_dm(train_batches=6, num_workers=2).train_dataloader(), 1)
    assert _equal(single, workers)  # the data do not depend on num_workers
    inputs = [b[INPUTS] for b in workers]
    assert all(not torch.equal(inputs[i], inputs[j]) for i in range(len(inputs)) for j in range(i))


def test_ranks_read_disjoint_parts_of_the_same_epoch():
    dm = _dm(train_batches=6)
    whole = _batches(dm.train_dataloader())
    ranks = [_batches(dm.loader("train", rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 3
    assert _equal(ranks[0], whole[0::2])
    assert _equal(ranks[1], whole[1::2])


def test_regression_sampler_targets_follow_the_function():
    sampler = RegressionFunction(input_dim=3, function="linear", noise=0.0)
    batch = sampler.sample(16, torch.Generator().manual_seed(0))
    assert torch.allclose(batch[TARGETS].squeeze(-1), batch[INPUTS] @ sampler.weights)
    tanh = RegressionFunction(input_dim=3, function=torch.tanh, noise=0.0)
    batch = tanh.sample(16, torch.Generator().manual_seed(0))
    assert torch.allclose(batch[TARGETS].squeeze(-1), torch.tanh(batch[INPUTS] @ tanh.weights))


def test_associative_recall_answers_the_value_paired_with_the_query():
    sampler = AssociativeRecall(vocab_size=11, seq_len=30)
    batch = sampler.sample(64, torch.Generator().manual_seed(0))
    tokens, answer = batch[INPUTS], batch[TARGETS]
    assert tokens.shape == (64, 30) and answer.shape == (64,)
    assert tokens.dtype == answer.dtype == torch.int64
    assert int(tokens.max()) < 11 and (tokens[:, 0] == 0).all()  # even length: one pad
    pairs = tokens[:, 1:-1].reshape(64, -1, 2)
    for row in range(64):
        matches = pairs[row, pairs[row, :, 0] == tokens[row, -1], 1]
        assert len(matches) >= 1 and (matches == answer[row]).all()
    assert sampler.dims == {"vocab_size": 11, "seq_len": 30, "num_classes": 11}


def test_induction_heads_answer_the_token_after_the_trigger():
    sampler = InductionHeads(vocab_size=6, seq_len=20)
    batch = sampler.sample(64, torch.Generator().manual_seed(0))
    tokens, answer = batch[INPUTS], batch[TARGETS]
    trigger = 5
    assert ((tokens == trigger).sum(1) == 2).all() and (tokens[:, -1] == trigger).all()
    first = (tokens == trigger).int().argmax(1)
    assert torch.equal(tokens[torch.arange(64), first + 1], answer)


def test_bad_sizes_are_named():
    with pytest.raises(DataConfigError, match=r"data\.train_batches must be >= 1, got 0"):
        SimulatedDataModule(GaussianClusters(), train_batches=0)
    with pytest.raises(DataConfigError, match=r"seq_len >= 3, got 2"):
        AssociativeRecall(seq_len=2)


@pytest.mark.parametrize("sampler_cls", [AssociativeRecall, InductionHeads])
def test_append_answer_gives_safaris_format(sampler_cls):
    plain = sampler_cls(vocab_size=10, seq_len=21)
    appended = sampler_cls(vocab_size=10, seq_len=21, append_answer=True)
    batch = plain.sample(8, torch.Generator().manual_seed(0))
    long = appended.sample(8, torch.Generator().manual_seed(0))
    assert torch.equal(long[INPUTS][:, :-1], batch[INPUTS])
    assert torch.equal(long[INPUTS][:, -1], batch[TARGETS])
    assert appended.dims == {"vocab_size": 10, "seq_len": 22, "answer_length": 1}


def test_overfitting_reads_the_same_train_batches_every_epoch():
    """`debug=overfit` (trainer.overfit_batches): a simulated epoch draws new batches,
    so without this the loss could never go towards zero."""
    normal = _dm()
    assert not _equal(
        _batches(normal.train_dataloader(), 0), _batches(normal.train_dataloader(), 1)
    )
    overfit = _dm()
    overfit.trainer = SimpleNamespace(overfit_batches=3, global_rank=0, world_size=1)
    loader = overfit.train_dataloader()
    assert _equal(_batches(loader, 0), _batches(loader, 1))
    assert _equal(_batches(loader, 5), _batches(normal.train_dataloader(), 0))
