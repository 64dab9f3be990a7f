"""Consolidation: during sleep, glia turn the accumulated tags `A` into weight changes.

Rules, for a weight w with tag a (the bias is treated as a weight with constant input):

- `sgd`:   w -= lr * a
- `adam`:  Adam (Kingma and Ba, 2015) with `a` as the gradient
- `sign`:  w -= lr * sign(a)          (signSGD; a zero tag leaves w unchanged)
- `rprop`: w -= step * sign(a) * lr_t / lr, with a per-weight step that starts at lr, grows
           x1.2 while sign(a) repeats and shrinks x0.5 when it flips (clipped to
           [lr / 1000, 50 * lr]); after a flip the weight waits one sleep (the iRprop- variant
           of `torch.optim.Rprop`). `lr_t` is the learning rate that a schedule has set now:
           the schedule scales each move, and the step sizes adapt as without it.

Pruned synapses (mask 0) receive a zero tag and are set back to exactly 0 after every step,
so no rule can revive them, not even through Adam's momentum. Structural changes reset the
per-synapse optimizer state of every synapse they prune or grow (`reset_synapse_state`).
"""

from __future__ import annotations

import enum

import torch

from microglia.glia.tags import GlialTags
from microglia.glia.writes import WriteCounter
from microglia.network import SpikingMLP

RPROP_ETAS = (0.5, 1.2)
RPROP_STEP_RANGE = (1e-3, 50.0)
"""Bounds of the rprop step, as multiples of the learning rate (its initial step)."""


class ConsolidationRule(str, enum.Enum):
    """Rule that turns tags into weight changes."""

    SGD = "sgd"
    ADAM = "adam"
    SIGN = "sign"
    RPROP = "rprop"


class SignSGD(torch.optim.Optimizer):
    """Move each parameter by exactly `lr` against the sign of its gradient."""

    def __init__(self, params, lr: float):
        if lr <= 0.0:
            raise ValueError(f"lr must be positive, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None:
                    parameter.add_(torch.sign(parameter.grad), alpha=-group["lr"])


class ScheduledRprop(torch.optim.Rprop):
    """`torch.optim.Rprop` whose moves are scaled by `lr / initial_lr`, so a learning-rate schedule acts on it.

    Plain Rprop reads `lr` only once, as the first step size, so a schedule would not change
    it. Here the step sizes adapt exactly as in `torch.optim.Rprop`, and each move is then
    multiplied by the present `lr` over the `lr` given at construction.
    """

    def __init__(self, params, lr: float, etas: tuple[float, float], step_sizes: tuple[float, float]):
        super().__init__(params, lr=lr, etas=etas, step_sizes=step_sizes)
        for group in self.param_groups:
            group["initial_lr"] = lr

    @torch.no_grad()
    def step(self, closure=None):
        rates, before = [], []
        for group in self.param_groups:
            rates.append(group["lr"])
            # Rprop sets a new weight's first step size to group["lr"], which must stay the initial lr
            group["lr"] = group["initial_lr"]
            before.append([parameter.clone() for parameter in group["params"]])

        super().step()

        for group, lr, old in zip(self.param_groups, rates, before):
            group["lr"] = lr
            scale = lr / group["initial_lr"]
            if scale == 1.0:
                continue
            for parameter, old_value in zip(group["params"], old):
                parameter.copy_(old_value + (parameter - old_value) * scale)


def make_optimizer(rule: ConsolidationRule | str, parameters, lr: float) -> torch.optim.Optimizer:
    """Build the `torch.optim` optimizer that applies a consolidation rule."""
    rule = ConsolidationRule(rule)
    if rule is ConsolidationRule.SGD:
        return torch.optim.SGD(parameters, lr=lr)
    if rule is ConsolidationRule.ADAM:
        return torch.optim.Adam(parameters, lr=lr)
    if rule is ConsolidationRule.SIGN:
        return SignSGD(parameters, lr=lr)
    low, high = RPROP_STEP_RANGE
    return ScheduledRprop(parameters, lr=lr, etas=RPROP_ETAS, step_sizes=(low * lr, high * lr))


class Consolidator:
    """Apply tags to a network's weights with one consolidation rule, and count weight writes.

    Args:
        network: the network to change.
        rule: the consolidation rule.
        lr: learning rate (the initial step for `rprop`).
    """

    def __init__(self, network: SpikingMLP, rule: ConsolidationRule | str, lr: float):
        self.network = network
        self.rule = ConsolidationRule(rule)
        self.lr = lr
        self.layers = network.synaptic_layers
        parameters = [p for layer in self.layers for p in (layer.weight, layer.bias)]
        self.optimizer = make_optimizer(self.rule, parameters, lr)
        self.writes = WriteCounter(parameters)

    @torch.no_grad()
    def consolidate(self, tags: GlialTags) -> int:
        """Apply the tags, re-apply the synapse masks, clear the tags; return the weight writes.

        A write is one weight or bias whose value changed.
        """
        for layer, weight_tag, bias_tag in zip(self.layers, tags.weight, tags.bias):
            layer.weight.grad = weight_tag * layer.mask
            layer.bias.grad = bias_tag.clone()
        self.writes.snapshot()

        self.optimizer.step()

        for layer in self.layers:
            layer.weight.mul_(layer.mask)
            layer.weight.grad = None
            layer.bias.grad = None
        tags.clear()
        return self.writes.count()

    @torch.no_grad()
    def reset_synapse_state(self, layer_index: int, changed: torch.Tensor) -> None:
        """Return the optimizer state of some synapses to the state of a fresh optimizer.

        Adam's moments, the rprop sign memory and any momentum become 0, and the rprop step
        becomes the initial learning rate. The step counters are shared by the whole tensor
        and stay as they are, so Adam's bias correction treats a new synapse like an old one.

        Args:
            layer_index: index into `network.synaptic_layers`.
            changed: `[post, pre]`, True for the synapses to reset.
        """
        state = self.optimizer.state.get(self.layers[layer_index].weight, {})
        for key, value in state.items():
            if not isinstance(value, torch.Tensor) or value.shape != changed.shape:
                continue
            value[changed] = self.lr if key == "step_size" else 0.0
