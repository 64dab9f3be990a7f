"""Homeostasis: during sleep, glia move each hidden neuron's excitability toward a target firing rate.

For neuron j with threshold theta_j, bias b_j and firing rate r_j (spikes per step, measured
over the wake batches since the last sleep), one sleep applies

    b_j     <- b_j - eta * theta_j * (r_j - r_target)
    theta_j <- clip(theta_j * exp(eta * (r_j - r_target)), theta_0 * THRESHOLD_RANGE)

A neuron that fires more than the target raises its threshold and lowers its bias, so it
fires less. A silent one does the opposite until its input reaches the threshold. The
threshold update is multiplicative, so thresholds stay positive, and the clip keeps them
within a fixed factor of their initial value theta_0, because a threshold near 0 would make
the pseudo-derivative `gamma / theta` explode. The bias term revives neurons whose synaptic
input is negative, which no positive threshold can make fire.
"""

from __future__ import annotations

import torch

from microglia.network import SpikingMLP

THRESHOLD_RANGE = (0.05, 20.0)
"""Lowest and highest threshold homeostasis may set, as multiples of the initial threshold."""


class Homeostasis:
    """Rate statistics of the hidden neurons and the threshold update that uses them.

    Args:
        network: the network whose hidden layers' `threshold` buffers and biases change.
        target_rate: r_target, spikes per neuron and step, in (0, 1).
        rate: eta, the gain of one update (per unit of rate error).
    """

    def __init__(self, network: SpikingMLP, target_rate: float, rate: float):
        if not 0.0 < target_rate < 1.0:
            raise ValueError(f"target_rate must be in (0, 1), got {target_rate}")
        if rate <= 0.0:
            raise ValueError(f"homeostasis rate must be positive, got {rate}")
        self.network = network
        self.target_rate = target_rate
        self.rate = rate
        self.initial_thresholds = [layer.threshold.clone() for layer in network.hidden]
        self.spike_counts = [torch.zeros(layer.out_features) for layer in network.hidden]
        self.neuron_steps = 0

    def record(self, neuron_spikes: list[torch.Tensor], neuron_steps: int) -> None:
        """Add one wake batch: spikes per neuron `[N_l]` for each hidden layer, over `neuron_steps` samples x steps."""
        for counts, spikes in zip(self.spike_counts, neuron_spikes):
            counts += spikes
        self.neuron_steps += neuron_steps

    def rates(self) -> list[torch.Tensor]:
        """Return the firing rate of every hidden neuron since the last update, `[N_l]` per layer."""
        steps = max(self.neuron_steps, 1)
        return [counts / steps for counts in self.spike_counts]

    @torch.no_grad()
    def update(self) -> None:
        """Move every bias and threshold toward the target rate, then clear the rate statistics."""
        if self.neuron_steps == 0:
            return
        low, high = THRESHOLD_RANGE
        for layer, rates, initial in zip(self.network.hidden, self.rates(), self.initial_thresholds):
            error = rates - self.target_rate
            layer.bias.sub_(self.rate * layer.threshold * error)
            factor = torch.exp(self.rate * error)
            layer.threshold.copy_(torch.clamp(layer.threshold * factor, initial * low, initial * high))
        self.clear()

    def clear(self) -> None:
        for counts in self.spike_counts:
            counts.zero_()
        self.neuron_steps = 0

    def state_dict(self) -> dict:
        """Return the rate statistics and the initial thresholds (the thresholds live in the network)."""
        return {
            "spike_counts": [counts.clone() for counts in self.spike_counts],
            "neuron_steps": self.neuron_steps,
            "initial_thresholds": [threshold.clone() for threshold in self.initial_thresholds],
        }

    def load_state_dict(self, state: dict) -> None:
        self.spike_counts = [counts.clone() for counts in state["spike_counts"]]
        self.neuron_steps = int(state["neuron_steps"])
        self.initial_thresholds = [threshold.clone() for threshold in state["initial_thresholds"]]
