"""Non-spiking leaky readout, its prediction rule and its loss.

    u_t = kappa * u_(t-1) + I_t

Legend: `u` readout potential `[B, C]` (one per class), `kappa` decay factor per step,
`I_t` input current. The prediction is the class with the largest mean of `u_t` over the
steps from `burn_in` on. The loss is the cross-entropy of `u_t`, averaged over those steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def readout_step(current: torch.Tensor, u: torch.Tensor, kappa: float) -> torch.Tensor:
    """Advance the readout by one step: `u_t = kappa * u_(t-1) + I_t`, all `[B, C]`."""
    return kappa * u + current


def readout_logits(u: torch.Tensor, burn_in: int = 0) -> torch.Tensor:
    """Average the readout `u` `[T, B, C]` over steps `burn_in..T-1`; returns `[B, C]`."""
    return u[burn_in:].mean(dim=0)


def readout_loss(u: torch.Tensor, labels: torch.Tensor, burn_in: int = 0) -> torch.Tensor:
    """Cross-entropy of `u_t` `[T, B, C]` against `labels` `[B]`, averaged over batch and steps >= burn_in."""
    scored = u[burn_in:]
    steps = scored.shape[0]
    return F.cross_entropy(scored.reshape(-1, scored.shape[-1]), labels.repeat(steps))
