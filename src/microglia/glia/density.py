"""Density schedule: the fraction of possible synapses that each structural step keeps, and how many it exchanges."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DensitySchedule:
    """Synapse density as a function of the structural step `s` (0 before the first step).

    With `initial == final` the density is constant. Otherwise it follows a half cosine
    from `initial` at step 0 to `final` at step `decay_steps`, and stays at `final` after:

        d(s) = final + (initial - final) * (1 + cos(pi * min(s, decay_steps) / decay_steps)) / 2

    The fraction of synapses exchanged per step (pruned and regrown at the same density) is
    the prune fraction times `exchange_scale(s)`. That factor is 1 at every step when
    `exchange_steps` is 0. Otherwise it follows a half cosine from 1 at step 0 to 0 at step
    `exchange_steps`.

    Args:
        final: density at the end of the schedule, in (0, 1].
        initial: density at the start, in (0, 1].
        decay_steps: structural steps from `initial` to `final`, >= 1.
        exchange_steps: structural steps over which the exchange decays to 0; 0 keeps it constant.
    """

    final: float = 1.0
    initial: float = 1.0
    decay_steps: int = 1
    exchange_steps: int = 0

    def __post_init__(self) -> None:
        for name in ("final", "initial"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} density must be in (0, 1], got {value}")
        if self.decay_steps < 1:
            raise ValueError(f"decay_steps must be >= 1, got {self.decay_steps}")
        if self.exchange_steps < 0:
            raise ValueError(f"exchange_steps must be >= 0, got {self.exchange_steps}")

    @property
    def is_constant(self) -> bool:
        return self.initial == self.final

    @property
    def is_dense(self) -> bool:
        """True when every step keeps every synapse, so no structural step is needed."""
        return self.initial == 1.0 and self.final == 1.0

    def density(self, step: int) -> float:
        """Return the density that structural step `step` leaves behind."""
        if self.is_constant:
            return self.final
        progress = min(max(step, 0), self.decay_steps) / self.decay_steps
        return self.final + (self.initial - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def exchange_scale(self, step: int) -> float:
        """Return the factor of the prune fraction at structural step `step`."""
        if self.exchange_steps == 0:
            return 1.0
        progress = min(max(step, 0), self.exchange_steps) / self.exchange_steps
        return 0.5 * (1.0 + math.cos(math.pi * progress))
