"""Spiking neurons: LIF dynamics, the leaky readout, pseudo-derivatives and layers."""

from microglia.neurons.layers import LeakyReadout, LIFLayer, is_constant_in_time
from microglia.neurons.lif import LIFState, Reset, initial_lif_state, lif_step, lif_steps_into
from microglia.neurons.readout import readout_logits, readout_loss, readout_step
from microglia.neurons.surrogate import Surrogate, pseudo_derivative, spike

__all__ = [
    "LIFLayer",
    "LIFState",
    "LeakyReadout",
    "Reset",
    "Surrogate",
    "initial_lif_state",
    "is_constant_in_time",
    "lif_step",
    "lif_steps_into",
    "pseudo_derivative",
    "readout_logits",
    "readout_loss",
    "readout_step",
    "spike",
]
