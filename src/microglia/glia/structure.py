"""Structural plasticity: glia prune weak synapses and grow new ones, territory by territory.

One structural step, in every territory of every synaptic layer (the readout included):

1. Prune: remove the present synapses with the smallest |W| (mask and weight set to 0).
2. Grow: form as many synapses, plus or minus the change the density schedule requests,
   among the synapses that were absent before the step. Guided growth picks those with the
   largest regrowth score, random growth draws them uniformly. A new synapse starts at weight 0.

The regrowth score of an absent synapse is |sum of its tags| over the sleeps since the last
structural step. The learner computes tags for absent synapses as well, because the update
signal `sum_t g_t psi_t xbar_t` exists for every pair of neurons, so the score shows where
a synapse would have been changed, and how consistently, had it existed.

Counts per territory come from `territories.plan_changes`. After a step each territory has
`round(d * capacity)` synapses (at least one), with d the scheduled density.
"""

from __future__ import annotations

import enum
import logging
import math

import torch

from microglia.glia.consolidation import Consolidator
from microglia.glia.density import DensitySchedule
from microglia.glia.tags import GlialTags
from microglia.glia.territories import (
    plan_changes,
    select_growth_guided,
    select_growth_random,
    select_prune,
    target_synapse_count,
    territory_slices,
)
from microglia.network import SpikingMLP

logger = logging.getLogger(__name__)


class Regrowth(str, enum.Enum):
    """Placement rule for new synapses."""

    GUIDED = "guided"
    RANDOM = "random"


class StructuralPlasticity:
    """Territories, regrowth scores and the prune-and-grow step of a network's synaptic layers.

    Args:
        network: the network whose masks and weights change.
        consolidator: its optimizer state is reset for every pruned or grown synapse.
        schedule: the density after each structural step.
        prune_fraction: fraction of each territory's present synapses exchanged per step, in [0, 1],
            scaled by the schedule's `exchange_scale`.
        regrowth: where new synapses grow.
        territory_size: postsynaptic neurons per territory.
        generator: seeds the draws of this object (initial masks, random growth).
    """

    def __init__(
        self,
        network: SpikingMLP,
        consolidator: Consolidator,
        schedule: DensitySchedule,
        *,
        prune_fraction: float = 0.1,
        regrowth: Regrowth | str = Regrowth.GUIDED,
        territory_size: int = 50,
        generator: torch.Generator | None = None,
    ):
        if not 0.0 <= prune_fraction <= 1.0:
            raise ValueError(f"prune_fraction must be in [0, 1], got {prune_fraction}")
        self.layers = network.synaptic_layers
        self.consolidator = consolidator
        self.schedule = schedule
        self.prune_fraction = prune_fraction
        self.regrowth = Regrowth(regrowth)
        self.territory_size = territory_size
        self.territories = [territory_slices(layer.out_features, territory_size) for layer in self.layers]

        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        self.generator = torch.Generator().manual_seed(seed)
        self.scores = [torch.zeros_like(layer.weight, requires_grad=False) for layer in self.layers]
        self.steps_done = 0
        self.pruned = [0] * len(self.layers)
        self.grown = [0] * len(self.layers)
        """Synapses pruned and grown per layer since training began."""

    @torch.no_grad()
    def initialize_masks(self) -> None:
        """Draw random masks at the schedule's initial density, if it is below 1.

        Each territory keeps `round(d * capacity)` synapses drawn uniformly. The surviving
        weights are scaled by `1 / sqrt(d)`, so a neuron's input current starts with the
        variance it would have in the dense network.
        """
        density = self.schedule.density(0)
        if density >= 1.0:
            return
        for layer, territories in zip(self.layers, self.territories):
            layer.mask.zero_()
            for territory in territories:
                block = layer.mask[territory]
                count = target_synapse_count(block.numel(), density)
                chosen = select_growth_random(torch.ones_like(block, dtype=torch.bool), count, self.generator)
                block.view(-1)[chosen] = 1.0
            layer.weight.mul_(layer.mask / math.sqrt(density))
        logger.info("synapse masks drawn at density %.4f", density)

    @torch.no_grad()
    def record_tags(self, tags: GlialTags) -> None:
        """Add the tags of absent synapses to their regrowth scores; call before the tags are consolidated."""
        if self.regrowth is not Regrowth.GUIDED:
            return
        for score, tag, layer in zip(self.scores, tags.weight, self.layers):
            score.addcmul_(tag, 1.0 - layer.mask)

    @torch.no_grad()
    def step(self) -> tuple[list[int], list[int]]:
        """Prune and grow in every territory at the next scheduled density; return (pruned, grown) per layer."""
        self.steps_done += 1
        density = self.schedule.density(self.steps_done)
        pruned, grown = [], []
        for index, layer in enumerate(self.layers):
            changed = torch.zeros_like(layer.mask, dtype=torch.bool)
            layer_pruned, layer_grown = 0, 0
            for territory in self.territories[index]:
                n_pruned, n_grown = self._restructure(index, territory, density, changed)
                layer_pruned += n_pruned
                layer_grown += n_grown
            self.consolidator.reset_synapse_state(index, changed)
            self.scores[index].zero_()
            pruned.append(layer_pruned)
            grown.append(layer_grown)

        self.pruned = [total + new for total, new in zip(self.pruned, pruned)]
        self.grown = [total + new for total, new in zip(self.grown, grown)]
        return pruned, grown

    def _restructure(self, index: int, territory: slice, density: float, changed: torch.Tensor) -> tuple[int, int]:
        """Prune and grow inside one territory of layer `index`; mark the changed synapses in `changed`."""
        layer = self.layers[index]
        mask = layer.mask[territory]
        weight = layer.weight.data[territory]
        present = int(mask.sum())
        target = target_synapse_count(mask.numel(), density)
        exchange_fraction = self.prune_fraction * self.schedule.exchange_scale(self.steps_done)
        n_pruned, n_grown = plan_changes(present, mask.numel(), target, exchange_fraction)

        # choose both sets before changing anything: growth picks among synapses absent now
        candidates = mask == 0
        prune = select_prune(weight, mask, n_pruned)
        if self.regrowth is Regrowth.GUIDED:
            grow = select_growth_guided(self.scores[index][territory].abs(), candidates, n_grown)
        else:
            grow = select_growth_random(candidates, n_grown, self.generator)

        # prune, then grow at weight 0
        for indices, value in ((prune, 0.0), (grow, 1.0)):
            mask.view(-1)[indices] = value
            weight.view(-1)[indices] = 0.0
            changed[territory].view(-1)[indices] = True
        return n_pruned, n_grown

    def state_dict(self) -> dict:
        """Return the regrowth scores, the schedule position, the totals and the generator state."""
        return {
            "scores": [score.clone() for score in self.scores],
            "steps_done": self.steps_done,
            "pruned": list(self.pruned),
            "grown": list(self.grown),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.scores = [score.clone() for score in state["scores"]]
        self.steps_done = int(state["steps_done"])
        self.pruned = [int(count) for count in state["pruned"]]
        self.grown = [int(count) for count in state["grown"]]
        self.generator.set_state(state["generator"])
