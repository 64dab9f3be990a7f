"""Glial territories, and the choice of synapses to prune and to grow inside one territory.

A territory is a block of consecutive postsynaptic neurons of one layer, with all their
incoming synapses: rows `[start, stop)` of the layer's `[post, pre]` weight and mask. Each
territory stands for one glial cell, which keeps its own synapse budget, so a layer's
synapses cannot all drift onto a few neurons.

The selection functions work on one territory's block and return flat indices into it
(row-major, as `block.flatten()` numbers the entries). Ties are broken towards the lower
index, so the result is fully determined by the inputs.
"""

from __future__ import annotations

import math

import torch


def territory_slices(n_post: int, territory_size: int) -> list[slice]:
    """Split `n_post` postsynaptic neurons into blocks of `territory_size`; the last block may be smaller."""
    if territory_size < 1:
        raise ValueError(f"territory_size must be >= 1, got {territory_size}")
    return [slice(start, min(start + territory_size, n_post)) for start in range(0, n_post, territory_size)]


def target_synapse_count(capacity: int, density: float) -> int:
    """Return the synapses a territory of `capacity` possible synapses keeps at `density`: at least one."""
    return min(capacity, max(1, round(density * capacity)))


def plan_changes(present: int, capacity: int, target: int, prune_fraction: float) -> tuple[int, int]:
    """Return how many synapses a territory prunes and grows in one structural step.

    The territory first exchanges `round(prune_fraction * present)` synapses (prunes that
    many, grows as many), then prunes or grows the difference between `present` and
    `target`, so it has exactly `target` synapses afterwards. The exchange is capped by the
    absent synapses that may grow: growth only picks synapses that were absent before the step.

    Args:
        present: synapses present now.
        capacity: synapses the territory could have (its neurons times the layer's inputs).
        target: synapses the territory should hold after the step.
        prune_fraction: fraction of the present synapses exchanged, in [0, 1].

    Returns:
        `(pruned, grown)`, with `present - pruned + grown == target`.
    """
    exchange = min(round(prune_fraction * present), present, capacity - max(present, target))
    exchange = max(exchange, 0)
    pruned = exchange + max(present - target, 0)
    grown = exchange + max(target - present, 0)
    return pruned, grown


def select_prune(weight: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """Return the flat indices of the `count` present synapses with the smallest |W|.

    Args:
        weight: the territory's weights `[post, pre]`.
        mask: the territory's mask `[post, pre]` (1.0 present, 0.0 absent).
        count: synapses to prune; at most the present ones.
    """
    present = mask.flatten() > 0
    if count > int(present.sum()):
        raise ValueError(f"cannot prune {count} synapses, the territory has only {int(present.sum())}")
    key = torch.where(present, weight.detach().flatten().abs(), torch.full_like(present, math.inf, dtype=weight.dtype))
    order = torch.sort(key, stable=True).indices
    return order[:count]


def select_growth_guided(score: torch.Tensor, candidates: torch.Tensor, count: int) -> torch.Tensor:
    """Return the flat indices of the `count` candidate synapses with the largest regrowth score.

    Args:
        score: the territory's regrowth scores `[post, pre]` (larger grows first).
        candidates: `[post, pre]`, True where a synapse may grow.
        count: synapses to grow; at most the candidates.
    """
    allowed = candidates.flatten()
    if count > int(allowed.sum()):
        raise ValueError(f"cannot grow {count} synapses, the territory has only {int(allowed.sum())} candidates")
    key = torch.where(allowed, score.flatten(), torch.full_like(score.flatten(), -math.inf))
    order = torch.sort(key, descending=True, stable=True).indices
    return order[:count]


def select_growth_random(candidates: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """Return the flat indices of `count` candidate synapses drawn uniformly without replacement.

    Args:
        candidates: `[post, pre]`, True where a synapse may grow.
        count: synapses to grow; at most the candidates.
        generator: random generator for the draw.
    """
    allowed = torch.nonzero(candidates.flatten()).flatten()
    if count > len(allowed):
        raise ValueError(f"cannot grow {count} synapses, the territory has only {len(allowed)} candidates")
    draw = torch.randperm(len(allowed), generator=generator)[:count]
    return allowed[draw]
