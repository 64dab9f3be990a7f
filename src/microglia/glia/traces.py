"""Presynaptic traces: the local signal that glia survey at every synapse.

    xbar_t = alpha * xbar_(t-1) + x_t

`alpha` is the decay of the postsynaptic membrane (`beta` for a hidden layer, `kappa` for
the readout), so `xbar_t` is exactly the derivative of the membrane potential at step t
with respect to the synaptic weight, ignoring resets. A chunk of steps is filtered at once
with one small matrix product instead of a step loop.
"""

from __future__ import annotations

import torch


def decay_matrix(steps: int, alpha: float, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Return the lower-triangular `[steps, steps]` matrix with entries `alpha ** (i - j)` for j <= i."""
    index = torch.arange(steps, device=device, dtype=dtype)
    lag = index[:, None] - index[None, :]
    return torch.where(lag >= 0, torch.as_tensor(alpha, dtype=dtype, device=device) ** lag.clamp(min=0), 0.0)


def filter_traces(x: torch.Tensor, alpha: float, initial: torch.Tensor | None = None) -> torch.Tensor:
    """Filter a chunk of activity into traces.

    Args:
        x: activity `[Tc, B, N]` for the steps of the chunk.
        alpha: decay factor per step.
        initial: trace `[B, N]` after the step before the chunk; zero when None.

    Returns:
        Traces `[Tc, B, N]`; the last one is the `initial` of the next chunk.
    """
    steps = x.shape[0]
    decay = decay_matrix(steps, alpha, device=x.device, dtype=x.dtype)
    traces = (decay @ x.reshape(steps, -1)).view(x.shape)

    if initial is not None:
        carry = alpha ** torch.arange(1, steps + 1, device=x.device, dtype=x.dtype)
        traces = traces + carry.view(-1, 1, 1) * initial
    return traces


def constant_input_coefficients(steps: int, alpha: float, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Return `c_t` `[steps]` such that the trace of a constant input x is `c_t * x`.

    `c_t = sum_(k <= t) alpha ** (t - k)`; the bias, an input of constant 1, has trace `c_t`.
    """
    ones = torch.ones(steps, 1, 1, device=device, dtype=dtype)
    return filter_traces(ones, alpha).view(steps)
