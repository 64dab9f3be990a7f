"""Alignment of the glial update with the exact BPTT gradient, on a fixed probe batch.

For each synaptic layer the glial update is the tag `A` that one wake on the probe batch
adds to a fresh `GlialTags`. Nothing is consolidated, and the rule's own tags stay untouched.
The reference is the gradient `G` of the same readout loss, by autograd through
`SpikingMLP.simulate` with the surrogate pseudo-derivative. Consolidation moves the weights
along `-A`, and gradient descent along `-G`, so with present synapses only (mask 1):

    alignment_angle_deg = arccos( <A, G> / (|A| |G|) ) in degrees   (0: the same direction)
    sign_agreement      = fraction of synapses with sign(A) == sign(G)

Biases are left out. A layer whose `A` or `G` is all zero has no direction, and its angle is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from microglia.glia.rule import GlialRule
from microglia.glia.tags import GlialTags
from microglia.neurons import readout_loss


@dataclass
class Alignment:
    """Alignment of one glial update with the BPTT gradient, one value per synaptic layer (input side first)."""

    angle_deg: list[float | None]
    sign_agreement: list[float | None]


def bptt_gradient(rule: GlialRule, x: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """Return the surrogate gradient of the readout loss for each layer's weight `[post, pre]`.

    `torch.autograd.grad` returns the gradients without touching any `.grad` field.
    """
    network = rule.network
    weights = [layer.weight for layer in network.synaptic_layers]
    with torch.enable_grad():
        loss = readout_loss(network.simulate(x).readout, labels, rule.learner.burn_in)
        gradients = torch.autograd.grad(loss, weights)
    return [gradient.detach() for gradient in gradients]


@torch.no_grad()
def glial_update(rule: GlialRule, x: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """Return the tag `A` `[post, pre]` of each layer after one wake on `x`, into fresh tags."""
    tags = GlialTags(rule.network)
    rule.learner.wake(x, labels, tags)
    return tags.weight


def measure_alignment(rule: GlialRule, x: torch.Tensor, labels: torch.Tensor) -> Alignment:
    """Compare the glial update with the BPTT gradient on probe input `x` `[T, B, F]`, `labels` `[B]`."""
    updates = glial_update(rule, x, labels)
    gradients = bptt_gradient(rule, x, labels)

    angles, agreements = [], []
    for layer, update, gradient in zip(rule.network.synaptic_layers, updates, gradients):
        present = layer.mask.bool()
        a = update[present].double()
        g = gradient[present].double()

        norms = a.norm() * g.norm()
        if norms > 0:
            cosine = float((a @ g) / norms)
            angles.append(math.degrees(math.acos(max(-1.0, min(1.0, cosine)))))
        else:
            angles.append(None)
        agreement = (torch.sign(a) == torch.sign(g)).double().mean() if a.numel() else None
        agreements.append(None if agreement is None else float(agreement))
    return Alignment(angle_deg=angles, sign_agreement=agreements)
