"""Pseudo-derivatives of the spike function, and a spike function that uses them.

The spike `s = H(v - theta)` has a zero derivative almost everywhere. Both learning paths
replace it with a pseudo-derivative `psi(v)`: the glial pathway multiplies it into the
eligibility of each synapse, and BPTT uses it as the backward pass of the spike.

    triangle:      psi = gamma / theta * max(0, 1 - |v - theta| / theta)
    fast sigmoid:  psi = gamma / theta / (1 + FAST_SIGMOID_SLOPE * |v - theta| / theta) ** 2

`gamma` is the dampening factor (dimensionless); `theta` the firing threshold.
"""

from __future__ import annotations

import enum

import torch

FAST_SIGMOID_SLOPE = 10.0
"""Slope of the fast-sigmoid pseudo-derivative, in units of 1 / threshold."""


class Surrogate(str, enum.Enum):
    """Shape of the pseudo-derivative."""

    TRIANGLE = "triangle"
    FAST_SIGMOID = "fast_sigmoid"


def pseudo_derivative(
    v: torch.Tensor,
    threshold: torch.Tensor,
    gamma: float,
    surrogate: Surrogate,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Compute psi(v), the pseudo-derivative of the spike with respect to the membrane potential.

    Args:
        v: membrane potential, any shape `[..., N]`.
        threshold: firing threshold, `[N]` or a scalar tensor; must be positive.
        gamma: dampening factor.
        surrogate: the shape of psi.
        out: a tensor of the shape of `v` that receives psi. It is computed in place,
            without temporaries of that size, and rounds exactly as without `out`. It must
            not be `v` itself, and no argument may require gradients.

    Returns:
        psi, same shape as `v` (`out` when given).
    """
    if out is None:
        distance = (v - threshold).abs() / threshold
        if surrogate is Surrogate.TRIANGLE:
            return (gamma / threshold) * (1.0 - distance).clamp_(min=0.0)
        return (gamma / threshold) / (1.0 + FAST_SIGMOID_SLOPE * distance).square()

    # the same operations in the same order, each writing into `out`
    torch.sub(v, threshold, out=out).abs_().div_(threshold)
    if surrogate is Surrogate.TRIANGLE:
        return out.neg_().add_(1.0).clamp_(min=0.0).mul_(gamma / threshold)
    out.mul_(FAST_SIGMOID_SLOPE).add_(1.0).square_()
    return torch.div(gamma / threshold, out, out=out)


class _SpikeFunction(torch.autograd.Function):
    """Heaviside step forward, pseudo-derivative backward."""

    @staticmethod
    def forward(ctx, v, threshold, gamma, surrogate):
        ctx.save_for_backward(v, threshold)
        ctx.gamma = gamma
        ctx.surrogate = surrogate
        return (v >= threshold).to(v.dtype)

    @staticmethod
    def backward(ctx, grad_spikes):
        v, threshold = ctx.saved_tensors
        psi = pseudo_derivative(v, threshold, ctx.gamma, ctx.surrogate)
        return grad_spikes * psi, None, None, None


def spike(
    v: torch.Tensor, threshold: torch.Tensor, gamma: float = 1.0, surrogate: Surrogate = Surrogate.TRIANGLE
) -> torch.Tensor:
    """Emit `s = H(v - theta)` (1.0 where v >= theta), differentiable through psi.

    Outside autograd (no gradient needed) this is a plain comparison.
    """
    if torch.is_grad_enabled() and v.requires_grad:
        return _SpikeFunction.apply(v, threshold, gamma, surrogate)
    return (v >= threshold).to(v.dtype)
