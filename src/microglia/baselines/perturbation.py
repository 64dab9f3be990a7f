"""Perturbation learning: glia jitter the weights and read one scalar, the minibatch loss.

For every synaptic layer (weights `W` `[post, pre]` and biases `b` `[post]`) a minibatch
draws `N` Gaussian directions `eps_i` and measures the loss at both ends of each one:

    L+_i = L(W + sigma eps_i),   L-_i = L(W - sigma eps_i)        (antithetic pairs)

The 2N losses are replaced by centred ranks `U` (rank-based fitness shaping of natural
evolution strategies, Wierstra et al., JMLR 2014): the lowest loss gets -0.5, the highest
+0.5, evenly spaced between. This keeps the step independent of the loss scale and of outliers.
The gradient estimate is

    g = sum_i (U+_i - U-_i) eps_i / (2 sigma N)

and an Adam optimizer takes it as the gradient, so the learning-rate schedule applies.
With `rank = r > 0` each weight direction is low-rank, `eps = A B^T / sqrt(r)` with
`A` `[post, r]` and `B` `[pre, r]` standard normal, which keeps the entries' variance at 1
while the search concentrates on fewer directions. Bias directions are always full.

Every loss costs one forward pass, so a minibatch costs 2N passes and no backward pass.
The variance of `g` grows with the number of weights: this rule is practical for small
networks (the `digits` data set, a few thousand to tens of thousands of synapses).
"""

from __future__ import annotations

import math

import torch

from microglia.glia.rule import BatchResult
from microglia.glia.writes import WriteCounter
from microglia.network import SpikingMLP
from microglia.neurons import readout_logits, readout_loss


def centered_ranks(losses: torch.Tensor) -> torch.Tensor:
    """Map `losses` `[M]` to evenly spaced values in [-0.5, 0.5] by rank (lowest loss -> -0.5).

    Equal losses share the mean of their ranks, so a direction that changes nothing gets
    the same utility at both ends and contributes no step.
    """
    count = losses.numel()
    if count < 2:
        raise ValueError(f"fitness shaping needs at least 2 losses, got {count}")

    order = torch.argsort(losses, stable=True)
    ranks = torch.empty(count, dtype=losses.dtype)
    ranks[order] = torch.arange(count, dtype=losses.dtype)

    # ties: every member of a group of equal losses gets the group's mean rank
    values, inverse = torch.unique(losses, return_inverse=True)
    if len(values) < count:
        sums = torch.zeros(len(values), dtype=losses.dtype).index_add_(0, inverse, ranks)
        sizes = torch.zeros(len(values), dtype=losses.dtype).index_add_(0, inverse, torch.ones_like(ranks))
        ranks = (sums / sizes)[inverse]
    return ranks / (count - 1) - 0.5


class PerturbationRule:
    """Train a `SpikingMLP` from losses alone: antithetic Gaussian perturbations and Adam.

    Args:
        network: the network to train.
        lr: Adam learning rate.
        sigma: standard deviation of the perturbation of every weight and bias.
        population: N, antithetic pairs per minibatch (2N forward passes).
        rank: rank r of each weight perturbation; 0 draws full-rank perturbations.
        burn_in: steps at the start of each sample excluded from loss and prediction.
        generator: random generator for the perturbations.
    """

    def __init__(
        self,
        network: SpikingMLP,
        *,
        lr: float = 1e-2,
        sigma: float = 0.05,
        population: int = 20,
        rank: int = 0,
        burn_in: int = 0,
        generator: torch.Generator | None = None,
    ):
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a finite number > 0, got {sigma}")
        if population < 1:
            raise ValueError(f"population must be >= 1 antithetic pair, got {population}")
        if rank < 0:
            raise ValueError(f"rank must be >= 0 (0: full rank), got {rank}")
        self.network = network
        self.sigma = sigma
        self.population = population
        self.rank = rank
        self.burn_in = burn_in
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.layers = network.synaptic_layers
        self.parameters = [p for layer in self.layers for p in (layer.weight, layer.bias)]
        self.optimizer = torch.optim.Adam(self.parameters, lr=lr)
        self.writes = WriteCounter(self.parameters)

    def sample_directions(self) -> list[torch.Tensor]:
        """Draw one direction per parameter: `[post, pre]` per weight (low-rank when `rank` > 0), `[post]` per bias."""
        directions = []
        for layer in self.layers:
            n_post, n_pre = layer.weight.shape
            if self.rank:
                left = torch.randn(n_post, self.rank, generator=self.generator)
                right = torch.randn(n_pre, self.rank, generator=self.generator)
                weight = left @ right.T / math.sqrt(self.rank)
            else:
                weight = torch.randn(n_post, n_pre, generator=self.generator)
            directions.append(weight * layer.mask)
            directions.append(torch.randn(n_post, generator=self.generator))
        return directions

    @torch.no_grad()
    def estimate_gradient(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Return the shaped gradient estimate (one tensor per parameter) and the 2N losses `[2N]`.

        The losses are ordered `L+_1, L-_1, L+_2, L-_2, ...`. The weights are restored exactly
        (from a copy) after every perturbation.
        """
        originals = [parameter.detach().clone() for parameter in self.parameters]
        directions, losses = [], []
        for _ in range(self.population):
            direction = self.sample_directions()
            directions.append(direction)
            for sign in (1.0, -1.0):
                for parameter, original, eps in zip(self.parameters, originals, direction):
                    parameter.copy_(original + sign * self.sigma * eps)
                losses.append(readout_loss(self.network.simulate(x).readout, labels, self.burn_in))
        for parameter, original in zip(self.parameters, originals):
            parameter.copy_(original)

        losses = torch.stack(losses)
        utilities = centered_ranks(losses).view(self.population, 2)
        weights = (utilities[:, 0] - utilities[:, 1]) / (2.0 * self.sigma * self.population)
        gradient = [torch.zeros_like(parameter) for parameter in self.parameters]
        for weight, direction in zip(weights, directions):
            for total, eps in zip(gradient, direction):
                total.add_(eps, alpha=float(weight))
        return gradient, losses

    def train_batch(self, x: torch.Tensor, labels: torch.Tensor) -> BatchResult:
        """Take one Adam step along the shaped estimate on minibatch `x` `[T, B, F]`, `labels` `[B]`.

        The reported loss, accuracy and spikes are those of the unperturbed network before the step.
        """
        with torch.no_grad():
            record = self.network.simulate(x)
            loss = readout_loss(record.readout, labels, self.burn_in)
            predictions = readout_logits(record.readout, self.burn_in).argmax(dim=-1)

        gradient, _ = self.estimate_gradient(x, labels)
        for parameter, estimate in zip(self.parameters, gradient):
            parameter.grad = estimate
        self.writes.snapshot()
        self.optimizer.step()

        with torch.no_grad():
            for layer in self.layers:
                layer.weight.mul_(layer.mask)
                layer.weight.grad = None
                layer.bias.grad = None
        writes = self.writes.count()

        return BatchResult(
            loss=float(loss),
            correct=int((predictions == labels).sum()),
            spikes_per_layer=[float(spikes.sum()) for spikes in record.spikes],
            weight_writes=writes,
        )

    def state_dict(self) -> dict:
        """Return what continuing bit-exactly needs: the Adam state and the generator state."""
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from `state_dict()`."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
