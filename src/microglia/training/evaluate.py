"""Evaluation of a network on a data split: accuracy, loss and activity statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from microglia.baselines.ann import ReLUMLP, static_input
from microglia.network import SpikingMLP
from microglia.neurons import readout_logits, readout_loss

SATURATION_RATE = 0.9
"""A neuron that fires on more than this fraction of steps counts as saturated."""


@dataclass
class Evaluation:
    """Metrics of one pass over a split. Spike statistics are None for a network without spikes."""

    accuracy: float
    """Fraction of samples classified correctly."""
    loss: float
    """Mean readout cross-entropy."""
    samples: int
    firing_rate: list[float] | None
    """Spikes per neuron and step, per hidden layer."""
    spikes_per_sample: float | None
    """Hidden-layer spikes per sample, all steps."""
    synops_per_sample: float | None
    """Synaptic operations per sample: each spike times the neuron's present outgoing synapses.

    Input spikes count too when the encoder emits spikes; direct-current input drives no events.
    """
    dead_fraction: list[float] | None
    """Fraction of each hidden layer that never fired on the split."""
    saturated_fraction: list[float] | None
    """Fraction of each hidden layer that fired on more than SATURATION_RATE of the steps."""
    confusion: list[list[int]] | None = None
    """Confusion matrix `[true, predicted]`, when requested."""

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def evaluate(
    network: SpikingMLP,
    images: torch.Tensor,
    labels: torch.Tensor,
    encoder: nn.Module,
    *,
    burn_in: int = 0,
    batch_size: int = 1000,
    confusion: bool = False,
) -> Evaluation:
    """Run `network` on `images` `[N, F]` with `labels` `[N]` and measure it.

    Args:
        encoder: turns a batch `[B, F]` into input over time `[T, B, F]`.
        burn_in: steps excluded from prediction and loss.
        batch_size: samples simulated together.
        confusion: also return the confusion matrix.
    """
    n_samples = len(labels)
    if n_samples == 0:
        raise ValueError("cannot evaluate on an empty split")
    n_classes = network.sizes[-1]

    correct = 0
    loss_sum = 0.0
    steps = 0
    neuron_spikes = [torch.zeros(layer.out_features) for layer in network.hidden]
    input_spikes = torch.zeros(network.sizes[0])
    spiking_input = getattr(encoder, "emits_spikes", False)
    matrix = torch.zeros(n_classes, n_classes, dtype=torch.long)

    for start in range(0, n_samples, batch_size):
        batch_images = images[start : start + batch_size]
        batch_labels = labels[start : start + batch_size]
        encoded = encoder(batch_images)
        record = network.simulate(encoded)
        steps = record.readout.shape[0]
        if spiking_input:
            input_spikes += encoded.sum(dim=(0, 1))

        predictions = readout_logits(record.readout, burn_in).argmax(dim=-1)
        correct += int((predictions == batch_labels).sum())
        loss_sum += float(readout_loss(record.readout, batch_labels, burn_in)) * len(batch_labels)
        for counts, spikes in zip(neuron_spikes, record.spikes):
            counts += spikes.sum(dim=(0, 1))
        if confusion:
            matrix += confusion_counts(batch_labels, predictions, n_classes)

    # activity: per-neuron rates, and synaptic operations through present outgoing synapses
    rates = [counts / (n_samples * steps) for counts in neuron_spikes]
    sources = [input_spikes, *neuron_spikes] if spiking_input else neuron_spikes
    targets = network.synaptic_layers if spiking_input else network.synaptic_layers[1:]
    synops = sum(float(counts @ layer.mask.sum(dim=0)) for counts, layer in zip(sources, targets))
    total_spikes = sum(float(counts.sum()) for counts in neuron_spikes)

    return Evaluation(
        accuracy=correct / n_samples,
        loss=loss_sum / n_samples,
        samples=n_samples,
        firing_rate=[float(rate.mean()) for rate in rates],
        spikes_per_sample=total_spikes / n_samples,
        synops_per_sample=synops / n_samples,
        dead_fraction=[float((rate == 0).float().mean()) for rate in rates],
        saturated_fraction=[float((rate > SATURATION_RATE).float().mean()) for rate in rates],
        confusion=matrix.tolist() if confusion else None,
    )


@torch.no_grad()
def evaluate_ann(
    network: ReLUMLP,
    images: torch.Tensor,
    labels: torch.Tensor,
    encoder: nn.Module,
    *,
    batch_size: int = 1000,
    confusion: bool = False,
) -> Evaluation:
    """Measure accuracy and cross-entropy of `network` on `images` `[N, F]`, `labels` `[N]`.

    The input goes through `encoder` and `static_input` as in training. Spike statistics are None.
    """
    n_samples = len(labels)
    if n_samples == 0:
        raise ValueError("cannot evaluate on an empty split")
    n_classes = network.sizes[-1]

    correct = 0
    loss_sum = 0.0
    matrix = torch.zeros(n_classes, n_classes, dtype=torch.long)
    for start in range(0, n_samples, batch_size):
        batch_labels = labels[start : start + batch_size]
        logits = network(static_input(encoder(images[start : start + batch_size])))
        predictions = logits.argmax(dim=-1)
        correct += int((predictions == batch_labels).sum())
        loss_sum += float(F.cross_entropy(logits, batch_labels, reduction="sum"))
        if confusion:
            matrix += confusion_counts(batch_labels, predictions, n_classes)

    return Evaluation(
        accuracy=correct / n_samples,
        loss=loss_sum / n_samples,
        samples=n_samples,
        firing_rate=None,
        spikes_per_sample=None,
        synops_per_sample=None,
        dead_fraction=None,
        saturated_fraction=None,
        confusion=matrix.tolist() if confusion else None,
    )


def confusion_counts(labels: torch.Tensor, predictions: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Count samples per (true class, predicted class): `[C, C]` from `labels` and `predictions` `[B]`."""
    pairs = labels * n_classes + predictions
    return torch.bincount(pairs, minlength=n_classes**2).view(n_classes, n_classes)
