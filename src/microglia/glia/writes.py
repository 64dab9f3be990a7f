"""Synaptic weight writes: the weights and biases whose value a learning step changed.

Every rule counts writes the same way, so writes per sample compare fairly across rules: a
value that the optimizer left unchanged, or that a synapse mask set back to the 0 it had, is
not a write.
"""

from __future__ import annotations

from typing import Iterable

import torch


class WriteCounter:
    """Count the values of some parameters that change between `snapshot()` and `count()`.

    Args:
        parameters: the weights and biases to watch.
    """

    def __init__(self, parameters: Iterable[torch.Tensor]):
        self.parameters = list(parameters)
        self.before: list[torch.Tensor] | None = None

    @torch.no_grad()
    def snapshot(self) -> None:
        """Remember the present values."""
        if self.before is None:
            self.before = [parameter.detach().clone() for parameter in self.parameters]
            return
        for old, parameter in zip(self.before, self.parameters):
            old.copy_(parameter)

    @torch.no_grad()
    def count(self) -> int:
        """Return how many values differ from the last snapshot."""
        if self.before is None:
            raise RuntimeError("count() needs a snapshot() first")
        return sum(int((parameter != old).sum()) for parameter, old in zip(self.parameters, self.before))
