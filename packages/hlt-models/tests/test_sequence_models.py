import sys

import pytest
import torch

from hlt_models import Hyena, Mamba, Transformer, num_parameters
from hlt_models.hyena import fft_conv
from hlt_models.mamba import INSTALL_HINT

VOCAB = 11


def build(cls, **kwargs):
    torch.manual_seed(0)
    return cls(vocab_size=VOCAB, dim=32, depth=2, max_len=64, **kwargs).eval()


@pytest.mark.parametrize("cls", [Transformer, Hyena])
@pytest.mark.parametrize("t", [0, 17, 63])
def test_causal_models_do_not_see_the_future(cls, t):
    model = build(cls)
    tokens = torch.randint(VOCAB, (2, 64), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[:, t] = (changed[:, t] + 1) % VOCAB
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    # FFT round-off leaves ~1e-7 noise; a leak of the future moves outputs by O(0.1..1)
    assert torch.allclose(before[:, :t], after[:, :t], atol=1e-5)
    assert (before[:, t] - after[:, t]).abs().max() > 1e-2


def test_bidirectional_transformer_sees_the_future():
    model = build(Transformer, causal=False)
    tokens = torch.randint(VOCAB, (2, 64), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[:, 40] = (changed[:, 40] + 1) % VOCAB
    with torch.no_grad():
        # at init attention's branch is small next to the N(0, 1) token embedding, so the
        # effect is ~4e-4; a causal model's is exactly 0 (checked above to 1e-5)
        assert (model(tokens)[:, :40] - model(changed)[:, :40]).abs().max() > 1e-4


def test_fft_conv_equals_direct_causal_convolution():
    g = torch.Generator().manual_seed(0)
    u, h, bias = torch.randn(2, 3, 20, generator=g), torch.randn(3, 20, generator=g), torch.randn(3)
    direct = torch.zeros_like(u)
    for t in range(20):
        for s in range(t + 1):
            direct[..., t] += h[:, s] * u[..., t - s]
    direct += u * bias.unsqueeze(-1)
    assert torch.allclose(fft_conv(u, h, bias), direct, atol=1e-4)


@pytest.mark.parametrize("cls", [Transformer, Hyena])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_keeps_shapes_and_gives_finite_gradients(cls, dtype):
    model = build(cls).train()
    tokens = torch.randint(VOCAB, (2, 32))
    with torch.autocast("cpu", dtype=dtype):
        out = model(tokens)
        assert out.shape == (2, 32, model.out_features)
        assert out.dtype in (dtype, torch.float32)  # LayerNorm may run in float32
        loss = out.float().pow(2).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("cls", [Transformer, Hyena])
def test_continuous_inputs_are_projected(cls):
    torch.manual_seed(0)
    model = cls(input_dim=5, dim=16, depth=1, max_len=10)
    assert model(torch.randn(3, 10, 5)).shape == (3, 10, 16)


def test_parameter_count_is_stated_and_exact():
    model = Transformer(vocab_size=10, dim=8, depth=1, heads=2, mlp_ratio=2, max_len=4)
    embed, pos = 10 * 8, 4 * 8
    attn = 8 * 24 + 24 + 8 * 8 + 8
    mlp = 8 * 16 + 16 + 16 * 8 + 8
    norms = 3 * 2 * 8
    assert num_parameters(model) == embed + pos + attn + mlp + norms
    assert model.out_features == 8


def test_hyena_parameters_do_not_depend_on_length():
    short = Hyena(vocab_size=10, dim=16, depth=1, max_len=16)
    long = Hyena(vocab_size=10, dim=16, depth=1, max_len=4096)
    assert num_parameters(short) == num_parameters(long)
    assert long(torch.randint(10, (1, 1000))).shape == (1, 1000, 16)


def test_residual_output_projections_are_scaled_down_with_depth():
    model = Transformer(vocab_size=10, dim=64, depth=8, max_len=8)
    out_std = model.blocks[0].mixer.out_proj.weight.std().item()
    in_std = model.blocks[0].mixer.qkv.weight.std().item()
    assert out_std == pytest.approx(0.02 / 4, rel=0.1)
    assert in_std == pytest.approx(0.02, rel=0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dim": 16}, "exactly one of vocab_size"),
        ({"vocab_size": 5, "input_dim": 3, "dim": 16}, "exactly one of vocab_size"),
        ({"vocab_size": 5, "dim": 10, "heads": 4}, "dim=10, heads=4"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Transformer(**kwargs)


def test_sequences_longer_than_max_len_are_refused():
    model = Transformer(vocab_size=5, dim=16, depth=1, max_len=8)
    with pytest.raises(ValueError, match="length 9 exceeds max_len=8"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_mamba_without_mamba_ssm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mamba_ssm", None)  # as if it were not installed
    with pytest.raises(ImportError) as info:
        Mamba(vocab_size=5, dim=16, depth=1)
    assert str(info.value) == INSTALL_HINT
    assert "pip install mamba-ssm" in INSTALL_HINT


@pytest.mark.parametrize("model_cls", [Transformer, Hyena])
def test_checkpointed_activations_give_the_same_gradients(model_cls):
    inputs = torch.randint(7, (2, 64), generator=torch.Generator().manual_seed(0))
    gradients, calls = [], []
    for checkpointed in (False, True):
        torch.manual_seed(0)  # same weights, and the same dropout masks
        model = model_cls(vocab_size=7, dim=16, depth=2, dropout=0.1, max_len=64,
                          checkpoint_activations=checkpointed)  # fmt: skip
        calls.append(0)
        model.blocks[0].mixer.register_forward_hook(lambda *_: calls.append(calls.pop() + 1))
        model(inputs).square().mean().backward()
        gradients.append({name: p.grad for name, p in model.named_parameters()})
    assert calls == [1, 2]  # checkpointed: the block ran again in the backward pass
    plain, recomputed = gradients
    assert plain.keys() == recomputed.keys()
    for name, grad in plain.items():
        torch.testing.assert_close(recomputed[name], grad, rtol=1e-5, atol=1e-7, msg=name)
