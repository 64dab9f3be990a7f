"""Encoders that turn static inputs `[B, F]` (values in [0, 1]) into input over time `[T, B, F]`."""

from __future__ import annotations

import enum

import torch
from torch import nn


class Encoding(str, enum.Enum):
    """Scheme that turns a static input into input over time."""

    DIRECT = "direct"
    RATE = "rate"
    LATENCY = "latency"


class DirectCurrent(nn.Module):
    """Inject each input value as a constant current at every step.

    The output is a stride-0 view `[T, B, F]` of the input, so no memory is copied and layers
    can compute its current once (see `microglia.neurons.is_constant_in_time`).
    """

    emits_spikes = False

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(0).expand(self.steps, *x.shape)


class PoissonRate(nn.Module):
    """Emit a spike at each step with probability equal to the input value (Bernoulli per step).

    Args:
        steps: number of steps T.
        generator: random generator, for reproducible spike trains.
    """

    emits_spikes = True

    def __init__(self, steps: int, generator: torch.Generator | None = None):
        super().__init__()
        self.steps = steps
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = x.clamp(0.0, 1.0).unsqueeze(0).expand(self.steps, *x.shape)
        return torch.bernoulli(probabilities, generator=self.generator)


class Latency(nn.Module):
    """Emit one spike per input, earlier for larger values: at step round((1 - x) * (T - 1)).

    Inputs of exactly 0 emit no spike.
    """

    emits_spikes = True

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spike_step = torch.round((1.0 - x.clamp(0.0, 1.0)) * (self.steps - 1))
        steps = torch.arange(self.steps, device=x.device, dtype=x.dtype).view(-1, *([1] * x.dim()))
        return ((steps == spike_step) & (x > 0)).to(x.dtype)


def make_encoder(encoding: Encoding | str, steps: int, generator: torch.Generator | None = None) -> nn.Module:
    """Build the encoder for an `Encoding` over `steps` steps."""
    encoding = Encoding(encoding)
    if encoding is Encoding.DIRECT:
        return DirectCurrent(steps)
    if encoding is Encoding.RATE:
        return PoissonRate(steps, generator)
    return Latency(steps)
