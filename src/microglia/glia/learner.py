"""The wake phase: run the network forward and accumulate glial update signals, without autograd.

For every hidden layer l and step t the learner has, from the forward pass alone,

    psi_t^(l)   pseudo-derivative of the membrane potential     [B, N_l]
    xbar_t      trace of the layer's input (alpha = its beta)   [B, N_(l-1)]
    g_t^(l)     learning signal from the feedback pathway       [B, N_l]

and adds `G^(l) = sum_t (g_t^(l) * psi_t^(l))^T xbar_t` to the tags; the readout adds
`sum_t delta_t^T xbar_t` with its own kappa trace. Eligibilities `psi * xbar` are never
stored per synapse: only their product with the learning signal, one matrix product per
chunk of steps and layer. Memory therefore depends on the chunk length, not on T.

The output error is `delta_t = (softmax(u_t) - onehot(y)) / (B * (T - burn_in))` for steps
t >= burn_in and zero before, which makes `G` of the `exact` pathway the gradient of the
mean readout loss truncated to same-step effects (see docs/algorithm.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from microglia.glia.feedback import FeedbackPathway
from microglia.glia.tags import GlialTags
from microglia.glia.traces import constant_input_coefficients, filter_traces
from microglia.network import SpikingMLP
from microglia.neurons import is_constant_in_time, lif_steps_into, pseudo_derivative, readout_step


@dataclass
class WakeResult:
    """Statistics of one wake minibatch."""

    loss: float
    """Mean readout cross-entropy over the batch and the scored steps."""
    correct: int
    """Samples whose prediction matched the label."""
    spikes_per_layer: list[float]
    """Total spikes of each hidden layer over the batch and all steps."""
    neuron_spikes: list[torch.Tensor]
    """Spikes of each hidden neuron over the batch and all steps, `[N_l]` per hidden layer."""


class _Workspace(NamedTuple):
    """Buffers `[Tc, B, N]` that the chunks of a minibatch overwrite, one per layer."""

    potentials: list[torch.Tensor]
    """Membrane potentials of each hidden layer."""
    spikes: list[torch.Tensor]
    """Spikes of each hidden layer."""
    psis: list[torch.Tensor]
    """Pseudo-derivatives of each hidden layer, then their products with the learning signal."""
    traces: list[torch.Tensor]
    """Presynaptic traces of each synaptic layer, `[Tc, B, N_pre]`, the readout's last."""
    currents: list[torch.Tensor]
    """Input currents of each hidden layer."""
    signals: list[torch.Tensor]
    """Learning signals of each hidden layer."""


class GlialLearner:
    """Accumulate glial update signals for a `SpikingMLP` during wake.

    Args:
        network: the network; its weights are read, never changed here.
        feedback: the pathway that turns the output error into learning signals.
        burn_in: steps at the start of each sample that carry no error and no loss.
        chunk_steps: steps processed together. Larger chunks give larger matrix products;
            memory grows with the chunk, never with the total number of steps.
    """

    def __init__(self, network: SpikingMLP, feedback: FeedbackPathway, *, burn_in: int = 0, chunk_steps: int = 10):
        if burn_in < 0:
            raise ValueError(f"burn_in must be >= 0, got {burn_in}")
        if chunk_steps < 1:
            raise ValueError(f"chunk_steps must be >= 1, got {chunk_steps}")
        self.network = network
        self.feedback = feedback
        self.burn_in = burn_in
        self.chunk_steps = chunk_steps
        self._workspace_key = None
        self._workspace_buffers = None

    @torch.no_grad()
    def wake(self, x: torch.Tensor, labels: torch.Tensor, tags: GlialTags) -> WakeResult:
        """Present one minibatch and add its update signals to `tags`.

        Args:
            x: input `[T, B, F]` from an encoder. A stride-0 (direct current) input is
                detected and its first-layer current and update are computed once.
            labels: class indices `[B]`.
            tags: the accumulators to add into.
        """
        network = self.network
        hidden = network.hidden
        readout = network.readout
        steps, batch_size = x.shape[0], x.shape[1]
        n_classes = network.sizes[-1]
        if steps <= self.burn_in:
            raise ValueError(f"steps ({steps}) must exceed burn_in ({self.burn_in})")
        scored_steps = steps - self.burn_in

        # fixed for the whole minibatch: weights, feedback matrices, bias trace coefficients
        weights = [layer.masked_weight() for layer in network.synaptic_layers]
        feedback_matrices = self.feedback.matrices()
        alphas = [layer.beta for layer in hidden] + [readout.kappa]
        coefficients = [constant_input_coefficients(steps, alpha, dtype=x.dtype) for alpha in alphas]
        first_current = None
        if is_constant_in_time(x):
            first_current = F.linear(x[0], weights[0], hidden[0].bias)
            first_signal = torch.zeros_like(first_current)

        # state carried from chunk to chunk: neurons, readout, and the trace after the last step
        states = [layer.initial_state(batch_size) for layer in hidden]
        u = torch.zeros(batch_size, n_classes, dtype=x.dtype)
        last_traces = [None] * len(alphas)
        onehot = F.one_hot(labels, n_classes).to(x.dtype)
        loss_sum = torch.zeros((), dtype=x.dtype)
        logit_sum = torch.zeros(batch_size, n_classes, dtype=x.dtype)
        neuron_spikes = [torch.zeros(layer.out_features, dtype=x.dtype) for layer in hidden]

        chunk_steps = min(self.chunk_steps, steps)
        workspace = self._workspace(chunk_steps, batch_size, x)

        for start in range(0, steps, chunk_steps):
            stop = min(steps, start + chunk_steps)
            length = stop - start
            # steps before `scored` lie in the burn-in: they carry no error, so they add nothing
            scored = max(self.burn_in - start, 0)
            learns = scored < length

            # forward through the hidden layers, a chunk of steps at a time
            activity = x[start:stop]
            pre_traces, psis = [], []
            for l, layer in enumerate(hidden):
                if l == 0 and first_current is not None:
                    currents = first_current.expand(length, -1, -1)
                    pre_traces.append(None)
                else:
                    currents = workspace.currents[l][:length]
                    torch.addmm(
                        layer.bias,
                        activity.reshape(-1, layer.in_features),
                        weights[l].T,
                        out=currents.view(-1, layer.out_features),
                    )
                    pre_traces.append(_filter(activity, alphas[l], last_traces, l, workspace.traces[l]))

                # the state of the previous chunk lives in the last rows of the buffers, which
                # this chunk reads at its first step, before any step overwrites them
                potentials = workspace.potentials[l][:length]
                activity = workspace.spikes[l][:length]
                states[l] = lif_steps_into(
                    currents,
                    states[l],
                    beta=layer.beta,
                    threshold=layer.threshold,
                    reset=layer.reset,
                    potentials=potentials,
                    spikes=activity,
                )
                neuron_spikes[l] += activity.sum(dim=(0, 1))
                if learns:
                    psi = workspace.psis[l][scored:length]
                    psis.append(pseudo_derivative(potentials[scored:], layer.threshold, layer.gamma, layer.surrogate, out=psi))

            # readout: integrate, score, and form the output error
            currents = F.linear(activity, weights[-1], readout.bias)
            potentials = []
            for current in currents:
                u = readout_step(current, u, readout.kappa)
                potentials.append(u)
            readout_trace = _filter(activity, alphas[-1], last_traces, -1, workspace.traces[-1])
            if not learns:
                continue

            scored_potentials = torch.stack(potentials[scored:])
            log_probs = torch.log_softmax(scored_potentials, dim=-1)
            loss_sum -= (log_probs * onehot).sum()
            logit_sum += scored_potentials.sum(dim=0)
            error = (log_probs.exp() - onehot) / (batch_size * scored_steps)

            # learning signals, and their products with the traces into the tags
            signal_buffers = [buffer[scored:length] for buffer in workspace.signals]
            signals = self.feedback.learning_signals(error, psis, feedback_matrices, out=signal_buffers)
            chunk_coefficients = [c[start + scored : stop] for c in coefficients]
            _accumulate(tags, -1, error, readout_trace[scored:], chunk_coefficients[-1])
            for l in range(len(hidden)):
                # the product overwrites the pseudo-derivatives, which nothing reads afterwards
                local_signal = psis[l].mul_(signals[l])
                if pre_traces[l] is None:
                    flat_signal = local_signal.reshape(length - scored, -1)
                    first_signal.view(-1).addmv_(flat_signal.T, chunk_coefficients[l])
                else:
                    _accumulate(tags, l, local_signal, pre_traces[l][scored:], chunk_coefficients[l])

        # a constant input's trace is c_t * x, so its update is one product for the whole minibatch
        if first_current is not None:
            tags.weight[0].addmm_(first_signal.T, x[0])
            tags.bias[0] += first_signal.sum(dim=0)
        tags.wake_batches += 1

        predictions = logit_sum.argmax(dim=-1)
        return WakeResult(
            loss=float(loss_sum) / (batch_size * scored_steps),
            correct=int((predictions == labels).sum()),
            spikes_per_layer=[float(counts.sum()) for counts in neuron_spikes],
            neuron_spikes=neuron_spikes,
        )

    def _workspace(self, chunk_steps: int, batch_size: int, x: torch.Tensor) -> _Workspace:
        """Return the buffers for chunks of `chunk_steps` steps, kept from the last minibatch when they fit.

        Every chunk overwrites them. Allocating tensors of this size anew for every chunk, or
        every minibatch, cost more time than the arithmetic done on them (fresh memory from
        the operating system is zeroed page by page on first touch).
        """
        key = (chunk_steps, batch_size, x.dtype, x.device)
        if self._workspace_key != key:
            hidden_widths = [layer.out_features for layer in self.network.hidden]
            input_widths = [layer.in_features for layer in self.network.synaptic_layers]
            shape = (chunk_steps, batch_size)
            self._workspace_buffers = _Workspace(
                potentials=[x.new_empty(*shape, width) for width in hidden_widths],
                spikes=[x.new_empty(*shape, width) for width in hidden_widths],
                psis=[x.new_empty(*shape, width) for width in hidden_widths],
                traces=[x.new_empty(*shape, width) for width in input_widths],
                currents=[x.new_empty(*shape, width) for width in hidden_widths],
                signals=[x.new_empty(*shape, width) for width in hidden_widths],
            )
            self._workspace_key = key
        return self._workspace_buffers


def _filter(activity: torch.Tensor, alpha: float, last_traces: list, layer: int, buffer: torch.Tensor) -> torch.Tensor:
    """Filter the input `[Tc, B, N]` of `layer` over a chunk into `buffer`, and keep the last trace.

    `last_traces[layer]` is the trace after the previous chunk (None before the first)
    and is updated in place. Returns the traces, a view of `buffer`.
    """
    traces = filter_traces(activity, alpha, last_traces[layer], out=buffer[: activity.shape[0]])
    if last_traces[layer] is None:
        last_traces[layer] = traces[-1].clone()
    else:
        last_traces[layer].copy_(traces[-1])
    return traces


def _accumulate(
    tags: GlialTags, layer: int, local_signal: torch.Tensor, pre_trace: torch.Tensor, coefficients: torch.Tensor
) -> None:
    """Add `sum_t local_signal_t^T pre_trace_t` `[post, pre]` and the bias term to the tags of `layer`.

    `local_signal` is `[Tc, B, post]`, `pre_trace` `[Tc, B, pre]` and `coefficients` `[Tc]`,
    the trace of the bias input (a constant 1).
    """
    n_post, n_pre = local_signal.shape[-1], pre_trace.shape[-1]
    tags.weight[layer].addmm_(local_signal.reshape(-1, n_post).T, pre_trace.reshape(-1, n_pre))
    tags.bias[layer].addmv_(local_signal.sum(dim=1).T, coefficients)
