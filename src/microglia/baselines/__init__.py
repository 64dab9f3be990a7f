"""Reference learning rules that the glial pathway is measured against."""

from microglia.baselines.ann import ANNRule, ReLUMLP, static_input
from microglia.baselines.bptt import BPTTRule
from microglia.baselines.perturbation import PerturbationRule, centered_ranks

__all__ = ["ANNRule", "BPTTRule", "PerturbationRule", "ReLUMLP", "centered_ranks", "static_input"]
