"""FLOPs per training step against hand counts (an MLP; Hyena's FFT convolution, which
torch's counter misses), and throughput keys in results.json."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from helpers import QUICK, compose_run
from hlt_core.run import run
from hlt_core.training.module import TaskModule
from hlt_core.training.throughput import FFT_FLOPS, flops_per_sample, training_flops
from hlt_data.batch import INPUTS, MASK, TARGETS
from hlt_models import MLP, Hyena
from hlt_models.hyena import fft_conv
from hlt_tasks import ClassificationTask, LanguageModelTask


def test_mlp_training_flops_equal_a_hand_count():
    batch = 8
    module = TaskModule(
        MLP(input_dim=16, hidden_dim=32, num_layers=2), ClassificationTask(4), torch.optim.SGD
    )
    data = {INPUTS: torch.randn(batch, 16), TARGETS: torch.randint(4, (batch,))}
    linears = [(16, 32), (32, 32), (32, 4)]  # two hidden layers and the decoder head
    forward = sum(2 * batch * i * o for i, o in linears)
    weight_grads = forward
    input_grads = sum(2 * batch * i * o for i, o in linears[1:])  # inputs need no gradient
    assert training_flops(module, data) == forward + weight_grads + input_grads
    assert all(p.grad is None for p in module.parameters())  # counting leaves no gradients
    # nor changes those of a gradient accumulation under way
    for parameter in module.parameters():
        parameter.grad = torch.ones_like(parameter)
    assert training_flops(module, data) == forward + weight_grads + input_grads
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in module.parameters())


def test_flops_per_sample_from_two_small_counts_equal_the_whole_batch():
    """Hyena has work per batch (its filter) besides work per sample: counting one and
    two samples must still give the full batch's FLOPs over its size."""
    torch.manual_seed(0)
    model = Hyena(vocab_size=7, dim=16, depth=2, max_len=64)
    module = TaskModule(model, LanguageModelTask(vocab_size=7), torch.optim.SGD)
    tokens = torch.randint(2, 7, (8, 64))
    batch = {INPUTS: tokens, MASK: torch.ones_like(tokens, dtype=torch.bool)}
    whole = training_flops(module, batch)
    one = training_flops(module, {k: v[:1] for k, v in batch.items()})
    assert one * 8 != whole  # the per-batch work is really there
    assert flops_per_sample(module, batch) == pytest.approx(whole / 8, rel=1e-9)
    assert all(p.grad is None for p in module.parameters())


def test_hyena_fft_convolution_is_counted_by_the_transform_formula():
    batch, channels, length = 2, 8, 64
    u, h = torch.randn(batch, channels, length), torch.randn(channels, length)
    with FlopCounterMode(display=False) as plain:
        fft_conv(u, h, torch.zeros(channels))
    with FlopCounterMode(display=False, custom_mapping=FFT_FLOPS) as counted:
        fft_conv(u, h, torch.zeros(channels))
    n = 2 * length  # zero-padded for a causal (linear) convolution
    per_value = 2.5 * math.log2(n)  # a real FFT of length n: 2.5 n log2 n
    expected = per_value * (batch * channels * n + channels * n + batch * channels * n)
    assert plain.get_total_flops() == 0  # what torch's counter alone would report
    assert counted.get_total_flops() == int(per_value * batch * channels * n) * 2 + int(
        per_value * channels * n
    )
    assert abs(counted.get_total_flops() - expected) <= 3


def test_throughput_is_logged_and_recorded(run_dir):
    run(compose_run([*QUICK[1:], "trainer.max_epochs=2", "logger=csv"], run_dir))
    record = json.loads((run_dir / "results.json").read_text())
    assert record["perf/samples_per_sec"] > 0
    assert record["perf/flops_per_sample"] > 0
    assert record["perf/mfu"] is None  # no known peak on a CPU
    logged = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "perf/samples_per_sec" in logged
