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


def filter_traces(
    x: torch.Tensor,
    alpha: float,
    initial: torch.Tensor | None = None,
    *,
    decay: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Filter a chunk of activity into traces.

    Args:
        x: activity `[Tc, B, N]` for the steps of the chunk.
        alpha: decay factor per step.
        initial: trace `[B, N]` after the step before the chunk; zero when None.
        decay: `decay_matrix(Tc, alpha)`, when the caller already has it.
        out: a contiguous tensor `[Tc, B, N]` that receives the traces; it must not
            share memory with `x` or `initial`.

    Returns:
        Traces `[Tc, B, N]` (`out` when given); the last one is the `initial` of the next chunk.
    """
    steps = x.shape[0]
    if decay is None:
        decay = decay_matrix(steps, alpha, device=x.device, dtype=x.dtype)
    if out is None:
        out = torch.empty(x.shape, device=x.device, dtype=x.dtype)
    flat_out = out.view(steps, -1)
    torch.mm(decay, x.reshape(steps, -1), out=flat_out)

    if initial is not None:
        carry = alpha ** torch.arange(1, steps + 1, device=x.device, dtype=x.dtype)
        flat_out.addr_(carry, initial.reshape(-1))
    return out


def constant_input_coefficients(steps: int, alpha: float, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Return `c_t` `[steps]` such that the trace of a constant input x is `c_t * x`.

    `c_t = sum_(k <= t) alpha ** (t - k)`; the bias, an input of constant 1, has trace `c_t`.
    """
    ones = torch.ones(steps, 1, 1, device=device, dtype=dtype)
    return filter_traces(ones, alpha).view(steps)
