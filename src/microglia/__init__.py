"""microglia: spiking neural networks that learn through a glial pathway instead of back-propagation.

The main entry points:

- `microglia.network.SpikingMLP`: LIF hidden layers and a leaky readout.
- `microglia.glia.GlialRule`: forward-only learning with wake and sleep phases.
- `microglia.baselines.BPTTRule`: surrogate-gradient BPTT on the same network.
- `microglia.training.TrainConfig` and `microglia.training.train`: a whole run.
"""

__version__ = "0.1.0"
