"""A feed-forward spiking network: LIF hidden layers and a leaky readout.

    input [T, B, F] -> LIFLayer -> ... -> LIFLayer -> LeakyReadout -> u [T, B, C]

The same module serves inference, surrogate-gradient BPTT (autograd through `forward`) and
the glial learner, which runs the layers step by step itself (`microglia.glia.learner`).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from microglia.neurons import LeakyReadout, LIFLayer, Reset, Surrogate


class SimulationRecord(NamedTuple):
    """Readout and spikes of one simulation of the network."""

    readout: torch.Tensor
    """Readout potential `u`, `[T, B, C]`."""
    spikes: list[torch.Tensor]
    """Spikes of each hidden layer, `[T, B, N_l]`."""


class SpikingMLP(nn.Module):
    """Fully connected spiking network.

    Args:
        sizes: layer widths `[F, N_1, ..., N_(L-1), C]`: input features, hidden LIF layers,
            classes. At least one hidden layer.
        beta: membrane decay factor of the hidden layers, per step.
        kappa: decay factor of the readout, per step.
        threshold: initial firing threshold of hidden neurons.
        reset: reset rule of hidden neurons.
        gamma, surrogate: pseudo-derivative of the hidden neurons.
        init_scale: hidden weights start uniform in +-init_scale / sqrt(fan_in).
        generator: random generator for the initial weights.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        beta: float = 0.9,
        kappa: float = 0.9,
        threshold: float = 1.0,
        reset: Reset = Reset.SUBTRACT,
        gamma: float = 1.0,
        surrogate: Surrogate = Surrogate.TRIANGLE,
        init_scale: float = 2.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        sizes = [int(size) for size in sizes]
        if len(sizes) < 3:
            raise ValueError(f"sizes needs input, at least one hidden layer and classes, got {sizes}")
        if any(size < 1 for size in sizes):
            raise ValueError(f"every layer width must be at least 1, got {sizes}")
        self.sizes = sizes

        self.hidden = nn.ModuleList(
            LIFLayer(
                n_pre,
                n_post,
                beta=beta,
                threshold=threshold,
                reset=reset,
                gamma=gamma,
                surrogate=surrogate,
                init_scale=init_scale,
                generator=generator,
            )
            for n_pre, n_post in zip(sizes[:-2], sizes[1:-1])
        )
        self.readout = LeakyReadout(sizes[-2], sizes[-1], kappa=kappa, generator=generator)

    @property
    def synaptic_layers(self) -> list[nn.Module]:
        """All layers with synapses, input side first: the hidden layers, then the readout."""
        return [*self.hidden, self.readout]

    def simulate(self, x: torch.Tensor) -> SimulationRecord:
        """Run the network over time and keep every layer's spikes.

        Args:
            x: input `[T, B, F]` from an encoder.
        """
        spikes = []
        activity = x
        for layer in self.hidden:
            activity, _ = layer(activity)
            spikes.append(activity)
        return SimulationRecord(readout=self.readout(activity), spikes=spikes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the readout potential `u` `[T, B, C]` for input `x` `[T, B, F]`."""
        return self.simulate(x).readout
