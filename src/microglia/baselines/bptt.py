"""Surrogate-gradient back-propagation through time (BPTT) on the same network.

Autograd differentiates the readout loss through every step, with the spike's derivative
replaced by the same pseudo-derivative psi that the glial pathway uses. This is the
"train offline, deploy on spiking hardware" reference. Its memory grows with T.
"""

from __future__ import annotations

import torch

from microglia.glia.rule import BatchResult
from microglia.glia.writes import WriteCounter
from microglia.network import SpikingMLP
from microglia.neurons import readout_logits, readout_loss


class BPTTRule:
    """Train a `SpikingMLP` with Adam on the surrogate gradient.

    Args:
        network: the network to train.
        lr: Adam learning rate.
        burn_in: steps at the start of each sample excluded from loss and prediction.
    """

    def __init__(self, network: SpikingMLP, *, lr: float = 1e-3, burn_in: int = 0):
        self.network = network
        self.burn_in = burn_in
        self.optimizer = torch.optim.Adam(network.parameters(), lr=lr)
        self.writes = WriteCounter(network.parameters())

    def state_dict(self) -> dict:
        """Return the optimizer state (Adam moments and step counts) for a checkpoint."""
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the state that `state_dict()` returned."""
        self.optimizer.load_state_dict(state["optimizer"])

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor) -> BatchResult:
        """Take one Adam step on minibatch `x` `[T, B, F]`, `labels` `[B]`."""
        record = self.network.simulate(x)
        loss = readout_loss(record.readout, labels, self.burn_in)

        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.writes.snapshot()
        self.optimizer.step()

        with torch.no_grad():
            for layer in self.network.synaptic_layers:
                layer.weight.mul_(layer.mask)
        writes = self.writes.count()

        predictions = readout_logits(record.readout.detach(), self.burn_in).argmax(dim=-1)
        return BatchResult(
            loss=float(loss.detach()),
            correct=int((predictions == labels).sum()),
            spikes_per_layer=[float(spikes.detach().sum()) for spikes in record.spikes],
            weight_writes=writes,
        )
