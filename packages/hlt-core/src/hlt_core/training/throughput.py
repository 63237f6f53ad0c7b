"""Throughput and model FLOPs utilisation (MFU), measured in every training run.

FLOPs per sample are counted once, on the first training batch (on its first one and
two samples: ``flops_per_sample``), with torch's ``FlopCounterMode`` over a forward and
backward pass (matmuls and convolutions), plus the FFTs that torch's counter leaves out:
a real FFT of length n counts 2.5 n log2 n FLOPs, a complex one 5 n log2 n (Hyena's long
convolution is three such transforms). Elementwise work is not counted, as is usual for
MFU. Samples (and tokens, for token inputs) per second are timed per training epoch; MFU
is FLOPs/s over the device's dense peak, known for a few GPUs in 16-bit precision, else
not reported.
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.flop_counter import FlopCounterMode

from hlt_core.contracts import INPUTS, MASK

# dense bf16/fp16 tensor-core peaks from the vendors' datasheets, FLOPs/s
PEAK_FLOPS_16BIT = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12}


def _transform_length(shape: Any, dim: Any) -> int:
    return math.prod(int(shape[d]) for d in dim)


def _real_fft_flops(
    input_shape: Any, dim: Any, *args: Any, out_shape: Any = None, **kw: Any
) -> int:
    n = _transform_length(input_shape, dim)
    return int(2.5 * math.prod(input_shape) * math.log2(max(n, 2)))


def _inverse_real_fft_flops(
    input_shape: Any, dim: Any, *args: Any, out_shape: Any = None, **kw: Any
) -> int:
    n = _transform_length(out_shape, dim)
    return int(2.5 * math.prod(out_shape) * math.log2(max(n, 2)))


def _complex_fft_flops(
    input_shape: Any, dim: Any, *args: Any, out_shape: Any = None, **kw: Any
) -> int:
    n = _transform_length(input_shape, dim)
    return int(5 * math.prod(input_shape) * math.log2(max(n, 2)))


FFT_FLOPS: dict[Any, Any] = {
    torch.ops.aten._fft_r2c: _real_fft_flops,
    torch.ops.aten._fft_c2r: _inverse_real_fft_flops,
    torch.ops.aten._fft_c2c: _complex_fft_flops,
}


def training_flops(module: Any, batch: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward and backward pass of ``module`` on ``batch``. Run in eval
    mode (no dropout draws, no running statistics updated); the parameters' gradients
    are left as they were (so it may run between the batches of an accumulation)."""
    was_training = module.training
    parameters = list(module.parameters())
    grads = [parameter.grad for parameter in parameters]
    module.eval()
    try:
        for parameter in parameters:
            parameter.grad = None
        with FlopCounterMode(display=False, custom_mapping=FFT_FLOPS) as counter:
            outputs = module(batch[INPUTS], batch.get(MASK))
            module.task.loss(outputs, batch).backward()
    finally:
        module.train(was_training)
        for parameter, grad in zip(parameters, grads, strict=True):
            parameter.grad = grad
    return int(counter.get_total_flops())


def flops_per_sample(module: Any, batch: dict[str, torch.Tensor]) -> float:
    """``training_flops`` of ``batch`` over its size, counted on its first one and two
    samples: FLOPs are affine in the batch size (work per sample plus work per batch,
    such as Hyena's filter), so the two counts give the whole batch's exactly, without
    an extra full-batch step before training (a 64 x 1 kbp Hyena batch: 0.5 GB, 1-2 s)."""
    size = batch[INPUTS].shape[0]
    if size <= 2:
        return training_flops(module, batch) / size
    one, two = (training_flops(module, {k: v[:n] for k, v in batch.items()}) for n in (1, 2))
    return (one + (two - one) * (size - 1)) / size


def peak_flops(trainer: L.Trainer) -> float | None:
    """The device's dense peak for this run's precision, where known."""
    if trainer.strategy.root_device.type != "cuda":
        return None
    if not str(trainer.precision).startswith(("bf16", "16")):
        return None
    name = torch.cuda.get_device_name(trainer.strategy.root_device)
    return next((peak for gpu, peak in PEAK_FLOPS_16BIT.items() if gpu in name), None)


class Throughput(Callback):
    """Logs ``perf/samples_per_sec`` (``perf/tokens_per_sec`` for token inputs),
    ``perf/flops_per_sample`` and, where the peak is known, ``perf/mfu`` at each training
    epoch end, and keeps the last epoch's values for results.json. Only shapes and wall
    time are read during the epoch: no host-device synchronisation per step."""

    def __init__(self) -> None:
        self.flops_per_sample: float | None = None
        self.summary: dict[str, float | None] = {}
        self._start = 0.0
        self._samples = 0
        self._tokens = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a run resumed mid-epoch does not start that epoch again: its clock starts here
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._samples, self._tokens = time.perf_counter(), 0, 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        inputs = batch[INPUTS]
        if self.flops_per_sample is None:  # once, here: no per-batch hook before the step
            self.flops_per_sample = flops_per_sample(pl_module, batch)
        self._samples += inputs.shape[0]
        if not inputs.is_floating_point() and inputs.dim() == 2:
            self._tokens += inputs.numel()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        elapsed = time.perf_counter() - self._start
        if not self._samples or elapsed <= 0:
            return
        rate = self._samples / elapsed * trainer.world_size
        values: dict[str, float | None] = {"perf/samples_per_sec": rate}
        if self._tokens:
            values["perf/tokens_per_sec"] = self._tokens / elapsed * trainer.world_size
        if self.flops_per_sample is not None:
            values["perf/flops_per_sample"] = self.flops_per_sample
            peak = peak_flops(trainer)
            values["perf/mfu"] = (
                None if peak is None else self.flops_per_sample * rate / (peak * trainer.world_size)
            )
        # each rank's estimate of the global rate, averaged over ranks
        pl_module.log_dict({k: v for k, v in values.items() if v is not None}, sync_dist=True)
        self.summary = values
