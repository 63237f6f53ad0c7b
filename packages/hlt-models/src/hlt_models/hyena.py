"""Hyena: gated implicit long convolutions computed by FFT in O(L log L).

Following Poli et al. (2023), "Hyena Hierarchy". A small filter network maps positional
features of t to a filter value per channel, h(t), modulated by an exponential decay;
the convolution ``y = h * v`` over the whole sequence is done with real FFTs on a
zero-padded length of 2L, which makes it causal (output t sums inputs <= t only).
Element-wise gates from short causal convolutions of the input interleave with the
long convolutions (``order`` - 1 of them).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hlt_models.sequence import ResidualBlock, SequenceModel


def fft_conv(u: torch.Tensor, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Causal convolution of ``u`` (batch, channels, L) with ``h`` (channels, L).

    Done in float32 whatever the autocast dtype: FFTs in half precision lose too much
    and cuFFT only takes power-of-two half lengths.
    """
    length = u.shape[-1]
    n = 2 * length
    with torch.autocast(device_type=u.device.type, enabled=False):
        uf = u.float()
        y = torch.fft.irfft(torch.fft.rfft(uf, n=n) * torch.fft.rfft(h.float(), n=n), n=n)
        y = y[..., :length] + uf * bias.float().unsqueeze(-1)
    return y.to(u.dtype)


class Sine(nn.Module):
    """``sin(w * x)`` with a learnable frequency per feature (the filter's activation)."""

    def __init__(self, dim: int, freq: float = 1.0) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.full((dim,), freq))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class HyenaFilter(nn.Module):
    """Implicit filter: position features -> MLP with sine activations -> decay window.

    Parameter count is independent of the sequence length, so one model serves any L.
    """

    decay: torch.Tensor  # a buffer

    def __init__(
        self,
        channels: int,
        filter_dim: int = 64,
        num_freqs: int = 8,
        freq: float = 1.0,
        fast_decay: float = 0.3,
        slow_decay: float = 1.5,
    ) -> None:
        super().__init__()
        self.num_freqs = num_freqs
        features = 1 + 2 * num_freqs
        self.mlp = nn.Sequential(
            nn.Linear(features, filter_dim),
            Sine(filter_dim, freq),
            nn.Linear(filter_dim, filter_dim),
            Sine(filter_dim, freq),
            nn.Linear(filter_dim, channels, bias=False),
        )
        # channel c decays as exp(-a_c * t / L * 10); spread between fast and slow
        decay = torch.linspace(math.log(1e-2) / fast_decay, math.log(1e-2) / slow_decay, channels)
        self.register_buffer("decay", decay.abs(), persistent=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def positions(self, length: int, device: torch.device) -> torch.Tensor:
        t = torch.linspace(0, 1, length, device=device).unsqueeze(-1)  # (L, 1)
        bands = torch.arange(1, self.num_freqs + 1, device=device) * math.pi
        return torch.cat([t, torch.sin(bands * t), torch.cos(bands * t)], dim=-1)

    def forward(self, length: int, device: torch.device) -> torch.Tensor:
        """The filter ``(channels, length)`` in float32."""
        with torch.autocast(device_type=device.type, enabled=False):
            z = self.positions(length, device)
            h = self.mlp(z)  # (L, channels)
            t = torch.linspace(0, 1, length, device=device).unsqueeze(-1)
            h = h * torch.exp(-t * self.decay)
        return h.transpose(0, 1)


class HyenaOperator(nn.Module):
    """The Hyena mixer of order N: N gates and one value, N-1 long convolutions."""

    def __init__(
        self,
        dim: int,
        order: int = 2,
        filter_dim: int = 64,
        short_kernel: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if order < 2:
            raise ValueError(f"Hyena needs order >= 2, got order={order}")
        self.dim = dim
        self.order = order
        width = (order + 1) * dim
        self.in_proj = nn.Linear(dim, width)
        # depthwise causal conv: pad left by k-1, keep the first L outputs
        self.short_conv = nn.Conv1d(
            width, width, short_kernel, padding=short_kernel - 1, groups=width
        )
        self.filter = HyenaFilter((order - 1) * dim, filter_dim)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        z = self.in_proj(x).transpose(1, 2)  # (B, (N+1)D, L)
        z = self.short_conv(z)[..., :length]
        *gates, v = z.split(self.dim, dim=1)
        filters = self.filter(length, x.device).split(self.dim, dim=0)
        biases = self.filter.bias.split(self.dim)
        for i, gate in enumerate(reversed(gates[1:])):
            v = self.dropout(v * gate)
            v = fft_conv(v, filters[i], biases[i])
        y = v * gates[0]
        return self.out_proj(y.transpose(1, 2))

    def reset_parameters_after_init(self) -> None:
        """The filter MLP needs larger weights than 0.02 to express varied filters."""
        for layer in self.filter.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        self.short_conv.reset_parameters()


class Hyena(SequenceModel):
    """Token or vector sequences -> ``(batch, length, dim)`` features with Hyena mixers.

    Always causal. The long convolutions carry position information, so no positional
    embedding is added by default (``positional`` may still ask for one).
    """

    def __init__(
        self,
        vocab_size: int | None = None,
        input_dim: int | None = None,
        dim: int = 128,
        depth: int = 2,
        order: int = 2,
        filter_dim: int = 64,
        short_kernel: int = 3,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        max_len: int = 2048,
        positional: str | None = None,
        checkpoint_activations: bool = False,
    ) -> None:
        blocks = [
            ResidualBlock(
                HyenaOperator(dim, order, filter_dim, short_kernel, dropout),
                dim,
                mlp_ratio,
                dropout,
            )
            for _ in range(depth)
        ]
        super().__init__(
            blocks, dim, vocab_size, input_dim, max_len, positional, dropout, checkpoint_activations
        )
