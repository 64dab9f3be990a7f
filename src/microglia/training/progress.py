"""The position of a run inside its epoch, and the signal handling that lets it stop between minibatches."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from typing import Any

import torch

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class EpochProgress:
    """The position inside the epoch in progress and the metric sums of its minibatches so far."""

    epoch: int
    """Epoch in progress, counted from 1."""
    batch: int = 0
    """Minibatches of this epoch already trained."""
    order: torch.Tensor | None = None
    """Sample order of this epoch `[N_train]`, drawn before its first minibatch."""
    loss_sum: float = 0.0
    """Sum over trained samples of the minibatch loss."""
    correct: int = 0
    writes: int = 0
    spikes: list[float] = field(default_factory=list)
    """Spikes of each hidden layer over the trained samples."""
    seconds: float = 0.0
    """Time spent in this epoch's minibatches, over every process that worked on it."""

    def state_dict(self) -> dict[str, Any]:
        """Return the progress as checkpoint state."""
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "order": self.order,
            "loss_sum": self.loss_sum,
            "correct": self.correct,
            "writes": self.writes,
            "spikes": list(self.spikes),
            "seconds": self.seconds,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpochProgress:
        """Rebuild the progress from `state_dict()` output."""
        return cls(
            epoch=int(state["epoch"]),
            batch=int(state["batch"]),
            order=state["order"],
            loss_sum=float(state["loss_sum"]),
            correct=int(state["correct"]),
            writes=int(state["writes"]),
            spikes=[float(count) for count in state["spikes"]],
            seconds=float(state["seconds"]),
        )


class StopSignals:
    """Turn SIGINT and SIGTERM into a request to stop at the next minibatch boundary.

    Inside `with StopSignals() as stop:`, the first signal only sets `stop.received`, so the
    training loop can save a checkpoint and leave. A second signal raises KeyboardInterrupt at
    once. The previous handlers come back on exit. Outside the main thread, Python delivers no
    signals to handlers, so nothing is installed there.
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(number)
