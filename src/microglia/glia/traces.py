"""Presynaptic traces: the local signal that glia survey at every synapse.

    xbar_t = alpha * xbar_(t-1) + x_t

`alpha` is the decay of the postsynaptic membrane (`beta` for a hidden layer, `kappa` for
the readout), so `xbar_t` is exactly the derivative of the membrane potential at step t
with respect to the synaptic weight, ignoring resets. `decay_matrix` gives the same
filter as one matrix product over a chunk of steps.
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
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Filter a chunk of activity into traces, one step after the other.

    Args:
        x: activity `[Tc, B, N]` for the steps of the chunk.
        alpha: decay factor per step.
        initial: trace `[B, N]` after the step before the chunk; zero when None.
        out: a tensor `[Tc, B, N]` that receives the traces; it must not share memory
            with `x` or `initial`.

    Returns:
        Traces `[Tc, B, N]` (`out` when given); the last one is the `initial` of the next chunk.
    """
    if out is None:
        out = torch.empty(x.shape, device=x.device, dtype=x.dtype)

    # one element-wise pass per step: cheaper than the decay-matrix product, which
    # streams the whole chunk through memory twice
    if initial is None:
        out[0].copy_(x[0])
    else:
        torch.add(x[0], initial, alpha=alpha, out=out[0])
    for t in range(1, x.shape[0]):
        torch.add(x[t], out[t - 1], alpha=alpha, out=out[t])
    return out


def constant_input_coefficients(steps: int, alpha: float, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Return `c_t` `[steps]` such that the trace of a constant input x is `c_t * x`.

    `c_t = sum_(k <= t) alpha ** (t - k)`; the bias, an input of constant 1, has trace `c_t`.
    """
    ones = torch.ones(steps, 1, 1, device=device, dtype=dtype)
    return filter_traces(ones, alpha).view(steps)
