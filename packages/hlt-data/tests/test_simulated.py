import pytest
import torch

from hlt_data import GaussianClusters, RegressionFunction, SimulatedDataModule


def _batches(loader, epoch=0):
    loader.sampler.set_epoch(epoch)
    return list(loader)


def _dm(**kwargs):
    return SimulatedDataModule(
        GaussianClusters(input_dim=5, num_classes=3),
        batch_size=8,
        train_batches=4,
        val_batches=2,
        test_batches=2,
        seed=1,
        **kwargs,
    )


def test_batches_have_the_documented_structure():
    batch = next(iter(_dm().train_dataloader()))
    assert set(batch) == {"inputs", "targets"}
    assert batch["inputs"].shape == (8, 5)
    assert batch["targets"].dtype == torch.int64
    assert int(batch["targets"].max()) < 3


def test_same_seed_gives_identical_batches():
    a, b = _batches(_dm().train_dataloader()), _batches(_dm().train_dataloader())
    assert len(a) == len(b) == 4
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["inputs"], y["inputs"])
        assert torch.equal(x["targets"], y["targets"])


def test_splits_and_epochs_differ_but_val_is_fixed():
    dm = _dm()
    train0 = _batches(dm.train_dataloader(), 0)[0]["inputs"]
    train1 = _batches(dm.train_dataloader(), 1)[0]["inputs"]
    val0 = _batches(dm.val_dataloader(), 0)[0]["inputs"]
    val1 = _batches(dm.val_dataloader(), 1)[0]["inputs"]
    test0 = _batches(dm.test_dataloader(), 0)[0]["inputs"]
    assert not torch.equal(train0, train1)
    assert not torch.equal(train0, val0)
    assert not torch.equal(val0, test0)
    assert torch.equal(val0, val1)


def test_regression_sampler_targets_follow_the_function():
    sampler = RegressionFunction(input_dim=3, function="linear", noise=0.0)
    batch = sampler.sample(16, torch.Generator().manual_seed(0))
    assert torch.allclose(batch["targets"].squeeze(-1), batch["inputs"] @ sampler.weights)


def test_configured_dims_must_match_the_sampler():
    with pytest.raises(ValueError, match=r"data.dims.num_classes=7 but the sampler produces"):
        _dm(dims={"num_classes": 7})


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="data.train_batches must be >= 1, got 0"):
        SimulatedDataModule(GaussianClusters(), train_batches=0)
