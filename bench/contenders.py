"""The contenders of the benchmark: one way each to train and run the same spiking network.

Every contender trains the same fully connected network on direct-current input `[T, B, F]`
with the same neurons and loss:

- hidden layers of LIF neurons, decay beta = 0.9 per step, threshold 1, reset by subtraction;
- a non-spiking leaky readout with decay 0.9;
- the fast-sigmoid pseudo-derivative `1 / (1 + 10 |v - 1|) ** 2`, which all three libraries
  offer (microglia `Surrogate.FAST_SIGMOID`, snnTorch `surrogate.fast_sigmoid(slope=10)`,
  Norse's SuperSpike with alpha = 10);
- the readout cross-entropy averaged over all steps (no burn-in), and Adam with lr 1e-3.

Norse's LIF cells integrate `v += dt / tau_mem * (I - v)`, so with `dt / tau_mem = 0.1` the
decay is 0.9 and the input is scaled by 0.1; its first weights are drawn 10 times larger to
keep the same activity. Its reset by subtraction acts within the step of the spike, ours at
the next step: the arithmetic per step is the same.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from microglia.baselines import BPTTRule
from microglia.glia import FeedbackKind, GlialRule
from microglia.network import SpikingMLP
from microglia.neurons import Reset, Surrogate, readout_loss

BETA = 0.9
"""Membrane decay per step of every hidden neuron, and of the readout."""
THRESHOLD = 1.0
SURROGATE_SLOPE = 10.0
"""Slope of the fast-sigmoid pseudo-derivative, in units of 1 / threshold."""
LEARNING_RATE = 1e-3


@dataclass
class Contender:
    """A way to train a network: one training step and one inference pass on a minibatch."""

    name: str
    train_batch: Callable[[torch.Tensor, torch.Tensor], None]
    """Take one training step on input `[T, B, F]` and labels `[B]`."""
    infer: Callable[[torch.Tensor], torch.Tensor]
    """Return the readout `[T, B, C]` for input `[T, B, F]`, without gradients."""


GLIAL_CONTENDERS = [f"glia-{kind.value}" for kind in FeedbackKind]
CONTENDERS = [*GLIAL_CONTENDERS, "microglia-bptt", "snntorch-bptt", "snntorch-bptt-hoisted", "norse-bptt"]
"""Every contender, by name; the glial ones first."""


def build_contender(name: str, sizes: list[int], *, seed: int = 0, chunk_steps: int | None = None) -> Contender:
    """Build the contender `name` on a fresh network `sizes` `[F, N_1, ..., C]`.

    `chunk_steps` sets the glial learner's chunk length; None keeps the library default.
    """
    torch.manual_seed(seed)
    if name in GLIAL_CONTENDERS or name == "microglia-bptt":
        return _microglia_contender(name, sizes, seed, chunk_steps)
    if name in ("snntorch-bptt", "snntorch-bptt-hoisted"):
        return _module_contender(name, SnnTorchNetwork(sizes, hoist_input=name.endswith("hoisted")))
    if name == "norse-bptt":
        return _module_contender(name, NorseNetwork(sizes))
    raise ValueError(f"unknown contender {name!r}; expected one of {', '.join(CONTENDERS)}")


def default_chunk_steps() -> int:
    """Return the chunk length that `GlialRule` uses by default."""
    return GlialRule(SpikingMLP([1, 1, 1])).learner.chunk_steps


def _microglia_contender(name: str, sizes: list[int], seed: int, chunk_steps: int | None) -> Contender:
    generator = torch.Generator().manual_seed(seed)
    network = SpikingMLP(
        sizes,
        beta=BETA,
        kappa=BETA,
        threshold=THRESHOLD,
        reset=Reset.SUBTRACT,
        surrogate=Surrogate.FAST_SIGMOID,
        generator=generator,
    )
    if name == "microglia-bptt":
        rule = BPTTRule(network, lr=LEARNING_RATE, burn_in=0)
    else:
        options = {} if chunk_steps is None else {"chunk_steps": chunk_steps}
        kind = name.removeprefix("glia-")
        rule = GlialRule(network, feedback=kind, lr=LEARNING_RATE, burn_in=0, generator=generator, **options)

    def infer(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return network(x)

    return Contender(name, lambda x, labels: rule.train_batch(x, labels), infer)


def _module_contender(name: str, network: nn.Module) -> Contender:
    optimizer = torch.optim.Adam(network.parameters(), lr=LEARNING_RATE)

    def train_batch(x: torch.Tensor, labels: torch.Tensor) -> None:
        loss = readout_loss(network(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return network(x)

    return Contender(name, train_batch, infer)


class SnnTorchNetwork(nn.Module):
    """The network as snnTorch's tutorials write it: `snntorch.Leaky` neurons in a Python time loop.

    With `hoist_input` the first layer's current, constant for direct-current input, is
    computed once before the loop instead of at every step.
    """

    def __init__(self, sizes: list[int], *, hoist_input: bool = False):
        import snntorch
        from snntorch import surrogate

        super().__init__()
        self.hoist_input = hoist_input
        self.linears = nn.ModuleList(nn.Linear(n_pre, n_post) for n_pre, n_post in zip(sizes[:-1], sizes[1:]))
        spike_grad = surrogate.fast_sigmoid(slope=SURROGATE_SLOPE)
        neurons = [
            snntorch.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=spike_grad, reset_mechanism="subtract")
            for _ in sizes[1:-1]
        ]
        # the readout integrates without threshold or reset, like microglia's leaky readout
        neurons.append(snntorch.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=spike_grad, reset_mechanism="none"))
        self.neurons = nn.ModuleList(neurons)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the readout membrane `[T, B, C]` for input `[T, B, F]`."""
        membranes = [neuron.init_leaky() for neuron in self.neurons]
        first_current = self.linears[0](x[0]) if self.hoist_input else None

        readout = []
        for step in range(x.shape[0]):
            activity = x[step]
            for index, (linear, neuron) in enumerate(zip(self.linears, self.neurons)):
                current = first_current if index == 0 and first_current is not None else linear(activity)
                activity, membranes[index] = neuron(current, membranes[index])
            readout.append(membranes[-1])
        return torch.stack(readout)


class NorseNetwork(nn.Module):
    """The network with Norse's box LIF cells (no synaptic current) in a Python time loop."""

    def __init__(self, sizes: list[int]):
        norse_torch, reset_subtract = _import_norse()

        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(n_pre, n_post) for n_pre, n_post in zip(sizes[:-1], sizes[1:]))
        with torch.no_grad():
            for linear in self.linears:
                linear.weight.mul_(1.0 / (1.0 - BETA))
        tau_mem_inv = torch.as_tensor((1.0 - BETA) / 0.001)  # dt = 0.001, Norse's default
        lif = norse_torch.LIFBoxParameters(
            tau_mem_inv=tau_mem_inv,
            v_th=torch.as_tensor(THRESHOLD),
            method="super",
            alpha=torch.as_tensor(SURROGATE_SLOPE),
            reset_method=reset_subtract,
        )
        cells = [norse_torch.LIFBoxCell(lif) for _ in sizes[1:-1]]
        cells.append(norse_torch.LIBoxCell(norse_torch.LIBoxParameters(tau_mem_inv=tau_mem_inv)))
        self.cells = nn.ModuleList(cells)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the readout potential `[T, B, C]` for input `[T, B, F]`."""
        states = [None] * len(self.cells)
        readout = []
        for step in range(x.shape[0]):
            activity = x[step]
            for index, (linear, cell) in enumerate(zip(self.linears, self.cells)):
                activity, states[index] = cell(linear(activity), states[index])
            readout.append(activity)
        return torch.stack(readout)


def _import_norse():
    # norse 1.1 decorates functions with torch.jit.script, which torch 2.13 deprecates with a warning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import norse.torch as norse_torch
        from norse.torch.functional.reset import reset_subtract
    return norse_torch, reset_subtract


def import_benchmark_libraries() -> dict[str, str]:
    """Import snnTorch and Norse, and return the versions of every library the benchmark uses."""
    from importlib.metadata import version

    import snntorch  # noqa: F401

    _import_norse()
    return {name: version(name) for name in ("torch", "microglia", "snntorch", "norse", "numpy")}
