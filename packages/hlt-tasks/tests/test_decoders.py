import pytest
import torch

from hlt_tasks import ClassificationTask, MLPDecoder, PooledDecoder, PositionDecoder


def test_pooled_decoder_reads_last_first_or_mean_position():
    features = torch.zeros(2, 5, 3)
    features[:, 0] = 1.0
    features[:, -1] = 2.0
    for pool, expected in [("last", 2.0), ("first", 1.0), ("mean", 3.0 / 5)]:
        decoder = PooledDecoder(3, 1, pool=pool)
        torch.nn.init.ones_(decoder.head.proj.weight)
        torch.nn.init.zeros_(decoder.head.proj.bias)
        assert decoder(features).squeeze(-1).tolist() == pytest.approx([3 * expected] * 2)


def test_pooled_decoder_passes_fixed_width_features_to_its_head():
    assert PooledDecoder(4, 2)(torch.randn(6, 4)).shape == (6, 2)


def test_mlp_head_is_built_from_task_config():
    task = ClassificationTask(num_classes=3, decoder={"pool": "mean", "hidden_dim": 16})
    decoder = task.build_decoder(in_features=8)
    assert isinstance(decoder.head, MLPDecoder)
    assert decoder(torch.randn(2, 7, 8)).shape == (2, 3)


def test_position_decoder_keeps_positions_and_refuses_flat_features():
    decoder = PositionDecoder(8, 5, hidden_dim=12, num_layers=2)
    assert decoder(torch.randn(2, 7, 8)).shape == (2, 7, 5)
    with pytest.raises(ValueError, match=r"got shape \(2, 8\)"):
        decoder(torch.randn(2, 8))


def test_bad_pool_is_named():
    with pytest.raises(ValueError, match="pool='max' is unknown"):
        PooledDecoder(3, 1, pool="max")
