"""Fully connected layers of spiking and readout neurons, as `torch.nn.Module`s.

Weights are stored `[post, pre]` (the `torch.nn.Linear` convention). Each layer carries a
synapse mask of the same shape: 1.0 where a synapse exists, 0.0 where it was pruned or
never formed. The forward pass uses `weight * mask`, so a masked synapse carries nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from microglia.neurons.lif import LIFState, Reset, initial_lif_state, lif_step, lif_steps_into
from microglia.neurons.readout import readout_step
from microglia.neurons.surrogate import Surrogate


def is_constant_in_time(x: torch.Tensor) -> bool:
    """Tell whether `x` `[T, B, N]` is one `[B, N]` tensor expanded over time (stride 0).

    Direct-current encoding produces such a tensor; layers then compute its input current
    once per sample instead of once per step.
    """
    return x.dim() == 3 and x.shape[0] > 1 and x.stride(0) == 0


class _Synapses(nn.Module):
    """Masked, fully connected synapses with a bias: `I = x (W * M)^T + b`."""

    def __init__(self, in_features: int, out_features: int, init_scale: float, generator: torch.Generator | None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.init_scale = init_scale

        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.register_buffer("mask", torch.ones(out_features, in_features))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw weights uniformly from +-init_scale / sqrt(fan_in), zero the bias, apply the mask."""
        bound = self.init_scale / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            self.weight.mul_(self.mask)
            self.bias.zero_()

    def masked_weight(self) -> torch.Tensor:
        """Return `W * M`, `[post, pre]`."""
        return self.weight * self.mask

    def currents(self, x: torch.Tensor) -> torch.Tensor:
        """Compute input currents `[..., post]` from presynaptic activity `x` `[..., pre]`.

        For `x` constant in time (`[T, B, pre]` with stride 0 along T) the product is taken
        once and expanded, which saves T - 1 matrix products.
        """
        if is_constant_in_time(x):
            return F.linear(x[0], self.masked_weight(), self.bias).expand(x.shape[0], -1, -1)
        return F.linear(x, self.masked_weight(), self.bias)

    @property
    def density(self) -> float:
        """Fraction of synapses present."""
        return float(self.mask.mean())


class LIFLayer(_Synapses):
    """Fully connected synapses onto a population of LIF neurons.

    Args:
        in_features: presynaptic neurons (or input features).
        out_features: LIF neurons in this layer.
        beta: membrane decay factor per step, in (0, 1].
        threshold: initial firing threshold of every neuron, > 0. Stored per neuron in the
            `threshold` buffer `[N]`, which homeostasis may change.
        reset: reset by subtraction or to zero.
        gamma, surrogate: the pseudo-derivative (see `microglia.neurons.surrogate`).
        init_scale: weights start uniform in +-init_scale / sqrt(in_features). A scale of 2
            keeps deep layers from starting silent.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        beta: float = 0.9,
        threshold: float = 1.0,
        reset: Reset = Reset.SUBTRACT,
        gamma: float = 1.0,
        surrogate: Surrogate = Surrogate.TRIANGLE,
        init_scale: float = 2.0,
        generator: torch.Generator | None = None,
    ):
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"beta must be in (0, 1], got {beta}")
        if threshold <= 0.0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        super().__init__(in_features, out_features, init_scale, generator)
        self.beta = beta
        self.reset = Reset(reset)
        self.gamma = gamma
        self.surrogate = Surrogate(surrogate)
        self.register_buffer("threshold", torch.full((out_features,), float(threshold)))

    def initial_state(self, batch_size: int) -> LIFState:
        """Return the resting state for a batch."""
        return initial_lif_state(batch_size, self.out_features, device=self.weight.device, dtype=self.weight.dtype)

    def step(self, current: torch.Tensor, state: LIFState) -> LIFState:
        """Advance the neurons one step with input current `[B, N]`."""
        return lif_step(
            current,
            state,
            beta=self.beta,
            threshold=self.threshold,
            reset=self.reset,
            gamma=self.gamma,
            surrogate=self.surrogate,
        )

    def forward(self, x: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        """Run the layer over time.

        Args:
            x: presynaptic activity `[T, B, in_features]`.
            state: state before the first step; resting state when None.

        Returns:
            Spikes `[T, B, out_features]` and the state after the last step.
        """
        currents = self.currents(x)
        if state is None:
            state = self.initial_state(x.shape[1])

        # without autograd, the steps write into two buffers instead of stacking new tensors
        if not (torch.is_grad_enabled() and (currents.requires_grad or state.v.requires_grad)):
            potentials = torch.empty(currents.shape, dtype=currents.dtype, device=currents.device)
            spikes = torch.empty_like(potentials)
            state = lif_steps_into(
                currents,
                state,
                beta=self.beta,
                threshold=self.threshold,
                reset=self.reset,
                potentials=potentials,
                spikes=spikes,
            )
            return spikes, LIFState(v=state.v.clone(), spikes=state.spikes)

        spikes = []
        for current in currents:
            state = self.step(current, state)
            spikes.append(state.spikes)
        return torch.stack(spikes), state

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, beta={self.beta}, "
            f"reset={self.reset.value}, surrogate={self.surrogate.value}"
        )


class LeakyReadout(_Synapses):
    """Fully connected synapses onto non-spiking leaky integrators, one per class.

    Args:
        in_features: presynaptic neurons.
        out_features: classes.
        kappa: decay factor per step, in (0, 1].
        init_scale: weights start uniform in +-init_scale / sqrt(in_features).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        kappa: float = 0.9,
        init_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ):
        if not 0.0 < kappa <= 1.0:
            raise ValueError(f"kappa must be in (0, 1], got {kappa}")
        super().__init__(in_features, out_features, init_scale, generator)
        self.kappa = kappa

    def forward(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """Integrate presynaptic spikes `[T, B, in_features]` into the readout `[T, B, C]`.

        `u` is the readout potential `[B, C]` before the first step (zero when None).
        """
        currents = self.currents(x)
        if u is None:
            u = torch.zeros_like(currents[0])

        potentials = []
        for current in currents:
            u = readout_step(current, u, self.kappa)
            potentials.append(u)
        return torch.stack(potentials)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kappa={self.kappa}"
