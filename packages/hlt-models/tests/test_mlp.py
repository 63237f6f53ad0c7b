import pytest
import torch

from hlt_models import MLP, num_parameters


def test_mlp_maps_inputs_to_stated_width():
    model = MLP(input_dim=7, hidden_dim=32, num_layers=3)
    out = model(torch.randn(5, 7))
    assert out.shape == (5, model.out_features) == (5, 32)


def test_mlp_counts_its_parameters():
    model = MLP(input_dim=4, hidden_dim=8, num_layers=1)
    # Linear 4*8+8, LayerNorm 8+8
    assert num_parameters(model) == 4 * 8 + 8 + 16


def test_mlp_is_trainable():
    torch.manual_seed(0)
    model = MLP(input_dim=3, hidden_dim=16)
    head = torch.nn.Linear(model.out_features, 1)
    x = torch.randn(64, 3)
    y = x.sum(dim=1, keepdim=True)
    opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-2)
    first = None
    for _ in range(100):
        loss = torch.nn.functional.mse_loss(head(model(x)), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


@pytest.mark.parametrize("kwargs", [{"input_dim": 0}, {"input_dim": 3, "activation": "nope"}])
def test_mlp_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=r"input_dim|activation"):
        MLP(**kwargs)
