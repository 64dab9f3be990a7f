"""A rate-equivalent artificial neural network: a ReLU MLP of the same layer sizes, for context.

Its input is the static input, the mean of the encoded input over time (for direct-current input
that is the image itself, for a rate code it is the spike rate), and is trained with Adam
and cross-entropy. It has no spikes: `microglia.training.evaluate.evaluate_ann` reports every
spike statistic as None.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from microglia.glia.rule import BatchResult
from microglia.glia.writes import WriteCounter


class ReLUMLP(nn.Module):
    """Fully connected ReLU network with sizes `[F, N_1, ..., N_(L-1), C]`.

    Args:
        sizes: input features, hidden widths, classes. At least one hidden layer.
        generator: random generator for the initial weights (PyTorch's default uniform
            init, +-1/sqrt(fan_in)).
    """

    def __init__(self, sizes: Sequence[int], generator: torch.Generator | None = None):
        super().__init__()
        sizes = [int(size) for size in sizes]
        if len(sizes) < 3:
            raise ValueError(f"sizes needs input, at least one hidden layer and classes, got {sizes}")
        self.sizes = sizes
        self.layers = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        with torch.no_grad():
            for layer in self.layers:
                bound = 1.0 / layer.in_features**0.5
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits `[B, C]` for static input `x` `[B, F]`."""
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


def static_input(x: torch.Tensor) -> torch.Tensor:
    """Average encoded input `[T, B, F]` over time into the static input `[B, F]`."""
    return x.mean(dim=0)


class ANNRule:
    """Train a `ReLUMLP` with Adam on the static input.

    Args:
        network: the ReLU MLP to train.
        lr: Adam learning rate.
    """

    def __init__(self, network: ReLUMLP, *, lr: float = 1e-3):
        self.network = network
        self.optimizer = torch.optim.Adam(network.parameters(), lr=lr)
        self.writes = WriteCounter(network.parameters())

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor) -> BatchResult:
        """Take one Adam step on encoded input `x` `[T, B, F]`, `labels` `[B]`."""
        logits = self.network(static_input(x))
        loss = F.cross_entropy(logits, labels)

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.writes.snapshot()
        self.optimizer.step()
        writes = self.writes.count()
        return BatchResult(
            loss=float(loss.detach()),
            correct=int((logits.detach().argmax(dim=-1) == labels).sum()),
            spikes_per_layer=[0.0] * (len(self.network.sizes) - 2),
            weight_writes=writes,
        )

    def state_dict(self) -> dict:
        """Return the Adam state (the weights are the network's own state)."""
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from `state_dict()`."""
        self.optimizer.load_state_dict(state["optimizer"])
