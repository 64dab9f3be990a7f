"""Leaky integrate-and-fire (LIF) neurons in discrete time.

One time step is the unit of time; decay factors are per step. For neuron j at step t:

    v_t = beta * v_(t-1) + I_t - theta * s_(t-1)      reset by subtraction (default)
    v_t = beta * v_(t-1) * (1 - s_(t-1)) + I_t        reset to zero
    s_t = H(v_t - theta)

Legend: `v` membrane potential (dimensionless, threshold units), `I` input current, `s`
binary spikes, `beta` membrane decay factor per step (0 < beta <= 1), `theta` threshold
per neuron (> 0), `H` the Heaviside step.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import torch

from microglia.neurons.surrogate import Surrogate, spike


class Reset(str, enum.Enum):
    """Reset rule of the membrane potential after a spike."""

    SUBTRACT = "subtract"
    ZERO = "zero"


class LIFState(NamedTuple):
    """State of a population of LIF neurons after a step."""

    v: torch.Tensor
    """Membrane potential, `[B, N]`."""
    spikes: torch.Tensor
    """Spikes emitted at this step, `[B, N]`, 0.0 or 1.0."""


def initial_lif_state(batch_size: int, n_neurons: int, *, device=None, dtype=torch.float32) -> LIFState:
    """Return the resting state: zero potential, no spikes."""
    zeros = torch.zeros(batch_size, n_neurons, device=device, dtype=dtype)
    return LIFState(v=zeros, spikes=zeros.clone())


def lif_step(
    current: torch.Tensor,
    state: LIFState,
    *,
    beta: float,
    threshold: torch.Tensor,
    reset: Reset = Reset.SUBTRACT,
    gamma: float = 1.0,
    surrogate: Surrogate = Surrogate.TRIANGLE,
) -> LIFState:
    """Advance LIF neurons by one time step.

    Args:
        current: input current `I_t`, `[B, N]`.
        state: the state after step t-1.
        beta: membrane decay factor per step.
        threshold: firing threshold `[N]`.
        reset: reset by subtraction or to zero.
        gamma, surrogate: pseudo-derivative used when autograd differentiates the spike.

    Returns:
        The state after step t. Neither `state` nor `current` is modified.
    """
    # integrate and decay, with the reset of the previous step's spikes
    if reset is Reset.SUBTRACT:
        v = beta * state.v + current - threshold * state.spikes
    else:
        v = beta * state.v * (1.0 - state.spikes) + current

    # spike
    spikes = spike(v, threshold, gamma, surrogate)
    return LIFState(v=v, spikes=spikes)


def lif_steps_into(
    currents: torch.Tensor,
    state: LIFState,
    *,
    beta: float,
    threshold: torch.Tensor,
    reset: Reset,
    potentials: torch.Tensor,
    spikes: torch.Tensor,
) -> LIFState:
    """Run `lif_step` over a chunk of steps, writing into preallocated buffers, without autograd.

    The equations and the order of floating-point operations are those of `lif_step`, so
    both give bit-identical results; the tests check that. This variant exists for the
    glial learner, where allocating two tensors per step and stacking them afterwards cost
    more than the arithmetic.

    Args:
        currents: input currents `[Tc, B, N]` (a stride-0 view for a constant current).
        state: the state before the first step of the chunk; never modified.
        beta: membrane decay factor per step.
        threshold: firing threshold `[N]`.
        reset: reset by subtraction or to zero.
        potentials: buffer `[Tc, B, N]` that receives `v_t`.
        spikes: buffer `[Tc, B, N]` that receives `s_t` as 0.0 or 1.0.

    Returns:
        The state after the last step, as views into the buffers.
    """
    v_previous, spikes_previous = state.v, state.spikes
    keep = torch.empty_like(v_previous) if reset is Reset.ZERO else None

    for t in range(currents.shape[0]):
        v = potentials[t]

        # integrate and decay, with the reset of the previous step's spikes
        torch.mul(v_previous, beta, out=v)
        if reset is Reset.SUBTRACT:
            v.add_(currents[t])
            v.addcmul_(spikes_previous, threshold, value=-1.0)
        else:
            torch.neg(spikes_previous, out=keep).add_(1.0)
            v.mul_(keep)
            v.add_(currents[t])

        # spike
        torch.ge(v, threshold, out=spikes[t])
        v_previous, spikes_previous = v, spikes[t]
    return LIFState(v=v_previous, spikes=spikes_previous)
