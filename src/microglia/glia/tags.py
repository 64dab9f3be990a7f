"""Glial tags: per-synapse accumulators of the update signal between two sleeps."""

from __future__ import annotations

import torch

from microglia.network import SpikingMLP


class GlialTags:
    """Accumulated update signals `A`, one `[post, pre]` tensor per synaptic layer, and one per bias.

    Wake phases add into the tags; a sleep phase consolidates and clears them.
    """

    def __init__(self, network: SpikingMLP):
        layers = network.synaptic_layers
        self.weight = [torch.zeros_like(layer.weight, requires_grad=False) for layer in layers]
        self.bias = [torch.zeros_like(layer.bias, requires_grad=False) for layer in layers]
        self.wake_batches = 0

    def clear(self) -> None:
        """Zero every tag."""
        for tag in (*self.weight, *self.bias):
            tag.zero_()
        self.wake_batches = 0
