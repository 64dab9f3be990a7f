"""The glial learning rule: wake minibatches accumulate tags, and every K of them a sleep.

A sleep runs three phases in order. It consolidates the tags into the weights, moves the
thresholds and biases toward a target rate (when one is set), and every `structure_interval`
sleeps it prunes and grows synapses (when the density schedule is not dense).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from microglia.errors import CheckpointError
from microglia.glia.consolidation import ConsolidationRule, Consolidator
from microglia.glia.density import DensitySchedule
from microglia.glia.feedback import FeedbackKind, FeedbackPathway
from microglia.glia.homeostasis import Homeostasis
from microglia.glia.learner import GlialLearner
from microglia.glia.structure import Regrowth, StructuralPlasticity
from microglia.glia.tags import GlialTags
from microglia.network import SpikingMLP


@dataclass
class BatchResult:
    """Statistics of one training minibatch, shared by every learning rule."""

    loss: float
    correct: int
    spikes_per_layer: list[float]
    weight_writes: int = 0
    """Weights and biases changed by this batch (0 for a wake batch without sleep)."""


class GlialRule:
    """Forward-only glial learning with a sleep every `sleep_interval` minibatches.

    Args:
        network: the network to train.
        feedback: feedback kind.
        consolidation: consolidation rule.
        lr: learning rate of the consolidation rule.
        sleep_interval: K, the wake minibatches between two sleeps (1: online learning).
        burn_in: steps without error at the start of each sample.
        chunk_steps: steps processed together in the wake phase.
        generator: random generator for fixed feedback matrices, initial masks and random growth.
        density: the density schedule; None or a dense schedule turns structural plasticity off.
        prune_fraction: fraction of each territory's present synapses exchanged per structural step.
        regrowth: where new synapses grow, `guided` (largest regrowth score) or `random`.
        territory_size: postsynaptic neurons per glial territory.
        structure_interval: sleeps between two structural steps.
        target_rate: firing rate (spikes per step) that homeostasis keeps each hidden neuron at;
            0 turns homeostasis off.
        homeostasis_rate: gain of the threshold and bias update per sleep.
    """

    def __init__(
        self,
        network: SpikingMLP,
        *,
        feedback: FeedbackKind | str = FeedbackKind.SIGN,
        consolidation: ConsolidationRule | str = ConsolidationRule.ADAM,
        lr: float = 1e-3,
        sleep_interval: int = 1,
        burn_in: int = 0,
        chunk_steps: int = 10,
        generator: torch.Generator | None = None,
        density: DensitySchedule | None = None,
        prune_fraction: float = 0.1,
        regrowth: Regrowth | str = Regrowth.GUIDED,
        territory_size: int = 50,
        structure_interval: int = 100,
        target_rate: float = 0.0,
        homeostasis_rate: float = 0.1,
    ):
        if sleep_interval < 1:
            raise ValueError(f"sleep_interval must be >= 1, got {sleep_interval}")
        if structure_interval < 1:
            raise ValueError(f"structure_interval must be >= 1, got {structure_interval}")
        self.network = network
        self.sleep_interval = sleep_interval
        self.structure_interval = structure_interval
        self.feedback = FeedbackPathway(feedback, network, generator)
        self.learner = GlialLearner(network, self.feedback, burn_in=burn_in, chunk_steps=chunk_steps)
        self.tags = GlialTags(network)
        self.consolidator = Consolidator(network, consolidation, lr)
        self.sleeps = 0

        self.structure = None
        if density is not None and not density.is_dense:
            self.structure = StructuralPlasticity(
                network,
                self.consolidator,
                density,
                prune_fraction=prune_fraction,
                regrowth=regrowth,
                territory_size=territory_size,
                generator=generator,
            )
            self.structure.initialize_masks()
        self.homeostasis = Homeostasis(network, target_rate, homeostasis_rate) if target_rate > 0.0 else None

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimizer behind consolidation (learning-rate schedules act on it)."""
        return self.consolidator.optimizer

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor) -> BatchResult:
        """Wake on one minibatch `x` `[T, B, F]`, `labels` `[B]`; sleep if K wake batches have passed."""
        wake = self.learner.wake(x, labels, self.tags)
        if self.homeostasis is not None:
            self.homeostasis.record(wake.neuron_spikes, x.shape[0] * x.shape[1])

        writes = 0
        if self.tags.wake_batches >= self.sleep_interval:
            writes = self.sleep()
        return BatchResult(wake.loss, wake.correct, wake.spikes_per_layer, writes)

    @property
    def pruned(self) -> list[int]:
        """Synapses pruned per synaptic layer since training began."""
        return list(self.structure.pruned) if self.structure else [0] * len(self.network.synaptic_layers)

    @property
    def grown(self) -> list[int]:
        """Synapses grown per synaptic layer since training began."""
        return list(self.structure.grown) if self.structure else [0] * len(self.network.synaptic_layers)

    def sleep(self) -> int:
        """Consolidate, adapt thresholds and biases, and prune and grow when due; return the weight writes.

        Pruned and grown synapses are not counted as writes: they are structural changes,
        reported by `pruned` and `grown`.
        """
        if self.tags.wake_batches == 0:
            return 0

        # consolidate, after adding the tags of absent synapses to their regrowth scores
        if self.structure is not None:
            self.structure.record_tags(self.tags)
        writes = self.consolidator.consolidate(self.tags)
        self.sleeps += 1

        # homeostasis
        if self.homeostasis is not None:
            self.homeostasis.update()

        # prune and grow
        if self.structure is not None and self.sleeps % self.structure_interval == 0:
            self.structure.step()
        return writes

    def state_dict(self) -> dict:
        """Return everything needed to continue training bit-exactly, except the network's own state dict.

        The network's state dict contains weights, masks and thresholds. This one contains the
        optimizer state, the tags, the fixed feedback matrices, the sleep count, the regrowth
        scores with the schedule position, and the homeostatic rate statistics.
        """
        return {
            "optimizer": self.optimizer.state_dict(),
            "tags": {
                "weight": [tag.clone() for tag in self.tags.weight],
                "bias": [tag.clone() for tag in self.tags.bias],
                "wake_batches": self.tags.wake_batches,
            },
            "feedback": dict(self.feedback.state_dict()),
            "sleeps": self.sleeps,
            "structure": self.structure.state_dict() if self.structure is not None else None,
            "homeostasis": self.homeostasis.state_dict() if self.homeostasis is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned, into a rule built with the same settings."""
        self.optimizer.load_state_dict(state["optimizer"])
        for tag, saved in zip((*self.tags.weight, *self.tags.bias), (*state["tags"]["weight"], *state["tags"]["bias"])):
            tag.copy_(saved)
        self.tags.wake_batches = int(state["tags"]["wake_batches"])
        self.feedback.load_state_dict(state["feedback"])
        self.sleeps = int(state["sleeps"])
        for name in ("structure", "homeostasis"):
            part = getattr(self, name)
            if (part is None) != (state[name] is None):
                saved = "has" if state[name] is not None else "has no"
                built = "with" if part is not None else "without"
                raise CheckpointError(
                    f"the saved rule state {saved} {name} state, but this rule was built {built} it; "
                    "build the rule with the settings of the saved run"
                )
            if part is not None:
                part.load_state_dict(state[name])
