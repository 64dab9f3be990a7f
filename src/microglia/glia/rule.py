"""The glial learning rule: wake minibatches accumulate tags, and every K of them a sleep consolidates."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from microglia.glia.consolidation import ConsolidationRule, Consolidator
from microglia.glia.feedback import FeedbackKind, FeedbackPathway
from microglia.glia.learner import GlialLearner
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
        generator: random generator for fixed feedback matrices.
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
    ):
        if sleep_interval < 1:
            raise ValueError(f"sleep_interval must be >= 1, got {sleep_interval}")
        self.network = network
        self.sleep_interval = sleep_interval
        self.feedback = FeedbackPathway(feedback, network, generator)
        self.learner = GlialLearner(network, self.feedback, burn_in=burn_in, chunk_steps=chunk_steps)
        self.tags = GlialTags(network)
        self.consolidator = Consolidator(network, consolidation, lr)

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimizer behind consolidation (learning-rate schedules act on it)."""
        return self.consolidator.optimizer

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor) -> BatchResult:
        """Wake on one minibatch `x` `[T, B, F]`, `labels` `[B]`; sleep if K wake batches have passed."""
        wake = self.learner.wake(x, labels, self.tags)

        writes = 0
        if self.tags.wake_batches >= self.sleep_interval:
            writes = self.sleep()
        return BatchResult(wake.loss, wake.correct, wake.spikes_per_layer, writes)

    def state_dict(self) -> dict:
        """Return everything a resumed run needs to continue bit for bit.

        Contains the optimizer state (Adam moments, rprop step sizes), the tags and their
        wake-batch count, and the fixed feedback matrices. Tensors are references, not copies.
        """
        return {
            "optimizer": self.optimizer.state_dict(),
            "tags": {"weight": list(self.tags.weight), "bias": list(self.tags.bias), "wake_batches": self.tags.wake_batches},
            "feedback": dict(self.feedback.state_dict()),
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """Restore the state that `state_dict()` returned, into the existing tensors."""
        self.optimizer.load_state_dict(state["optimizer"])
        tags = state["tags"]
        for tag, saved in zip((*self.tags.weight, *self.tags.bias), (*tags["weight"], *tags["bias"]), strict=True):
            tag.copy_(saved)
        self.tags.wake_batches = int(tags["wake_batches"])
        self.feedback.load_state_dict(state["feedback"])

    def sleep(self) -> int:
        """Consolidate the tags into the weights; return the number of weight writes."""
        if self.tags.wake_batches == 0:
            return 0
        return self.consolidator.consolidate(self.tags)
