import pytest
import torch

from hlt_models import TabM
from hlt_models.tabm import EnsembleLinear, PeriodicEmbeddings


def test_tabm_returns_one_feature_row_per_member_from_numbers_and_categories():
    model = TabM(input_dim=5, categories=[3, 40], members=4, hidden_dim=8)
    inputs = torch.randn(6, 5)
    inputs[:, 3:] = torch.tensor([2.0, 17.0])  # category codes
    features = model(inputs)
    # 8 hidden units, then the inputs: 3 numbers, 3 one-hot codes, a 16-wide embedding
    assert features.shape == (6, model.members, model.out_features) == (6, 4, 8 + 3 + 3 + 16)
    # one shared input, four members that already differ (random signs in the first layer)
    assert not torch.allclose(features[:, 0], features[:, 1])


def test_only_categories_or_only_numbers_are_read_too():
    assert TabM(input_dim=2, categories=[3, 4], members=2, hidden_dim=4)(
        torch.ones(3, 2)
    ).shape == (3, 2, 4 + 3 + 4)
    assert TabM(input_dim=2, members=2, hidden_dim=4)(torch.ones(3, 2)).shape == (3, 2, 4 + 2)
    assert TabM(input_dim=2, members=2, hidden_dim=4, linear_skip=False)(
        torch.ones(3, 2)
    ).shape == (3, 2, 4)


def test_linear_skip_hands_every_member_the_inputs_so_a_decoder_can_be_linear():
    model = TabM(input_dim=3, categories=[2], members=3, hidden_dim=5)
    inputs = torch.tensor([[0.5, -1.0, 1.0], [2.0, 0.0, 0.0]])
    features = model(inputs)
    expected = torch.tensor([[0.5, -1.0, 0.0, 1.0], [2.0, 0.0, 1.0, 0.0]])
    for member in range(3):
        torch.testing.assert_close(features[:, member, 5:], expected)


def test_ensemble_linear_is_member_i_s_own_rank_one_scaled_layer():
    torch.manual_seed(0)
    layer = EnsembleLinear(members=3, in_features=4, out_features=2, diverse=True)
    with torch.no_grad():
        layer.s.uniform_(0.5, 2)
        layer.bias.normal_()
    inputs = torch.randn(5, 3, 4)
    for i in range(3):
        expected = (inputs[:, i] * layer.r[i]) @ layer.weight.T * layer.s[i] + layer.bias[i]
        torch.testing.assert_close(layer(inputs)[:, i], expected)
    assert set(layer.r.flatten().tolist()) == {-1.0, 1.0}


def test_periodic_embeddings_read_each_number_through_its_own_frequencies():
    embed = PeriodicEmbeddings(numbers=3, dim=5, frequencies=7)
    inputs = torch.randn(4, 3)
    out = embed(inputs)
    assert out.shape == (4, embed.out_features) == (4, 15)
    changed = inputs.clone()
    changed[:, 1] += 1
    moved = (embed(changed) - out).abs().reshape(4, 3, 5).sum(dim=(0, 2))
    assert moved[0] == moved[2] == 0 and moved[1] > 0


def test_tabm_learns_a_threshold_a_linear_model_cannot():
    torch.manual_seed(0)
    model = TabM(input_dim=2, members=2, hidden_dim=16, frequencies=8, embedding_dim=4)
    head = torch.nn.Linear(model.out_features, 1)
    x = torch.randn(128, 2)
    y = (x[:, :1].abs() < 0.5).float()
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(100):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(model(x)).mean(dim=1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    accuracy = ((head(model(x)).mean(dim=1) > 0).float() == y).float().mean()
    assert accuracy > 0.95


@pytest.mark.parametrize(
    "kwargs",
    [{"input_dim": 3, "members": 0}, {"input_dim": 0}, {"input_dim": 2, "frequency_scale": 0}],
)
def test_tabm_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=r"members|input column|frequency_scale"):
        TabM(**kwargs)
