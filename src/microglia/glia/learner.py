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

import torch
import torch.nn.functional as F

from microglia.glia.feedback import FeedbackPathway
from microglia.glia.tags import GlialTags
from microglia.glia.traces import constant_input_coefficients, filter_traces
from microglia.network import SpikingMLP
from microglia.neurons import is_constant_in_time, pseudo_derivative, readout_step


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
        constant_input = is_constant_in_time(x)
        if constant_input:
            first_current = F.linear(x[0], weights[0], hidden[0].bias)
            first_signal = torch.zeros_like(first_current)

        # state carried from chunk to chunk
        states = [layer.initial_state(batch_size) for layer in hidden]
        u = torch.zeros(batch_size, n_classes, dtype=x.dtype)
        last_traces = [None] * len(alphas)
        onehot = F.one_hot(labels, n_classes).to(x.dtype)
        loss_sum = torch.zeros((), dtype=x.dtype)
        logit_sum = torch.zeros(batch_size, n_classes, dtype=x.dtype)
        neuron_spikes = [torch.zeros(layer.out_features, dtype=x.dtype) for layer in hidden]

        for start in range(0, steps, self.chunk_steps):
            stop = min(steps, start + self.chunk_steps)
            activity = x[start:stop]
            learns = stop > self.burn_in

            # forward through the hidden layers, a chunk of steps at a time
            pre_traces, psis = [], []
            for l, layer in enumerate(hidden):
                if l == 0 and constant_input:
                    currents = first_current.expand(stop - start, -1, -1)
                    pre_traces.append(None)
                else:
                    currents = F.linear(activity, weights[l], layer.bias)
                    pre_traces.append(filter_traces(activity, alphas[l], last_traces[l]))
                    last_traces[l] = pre_traces[-1][-1]

                potentials, spikes = [], []
                for current in currents:
                    states[l] = layer.step(current, states[l])
                    potentials.append(states[l].v)
                    spikes.append(states[l].spikes)
                activity = torch.stack(spikes)
                neuron_spikes[l] += activity.sum(dim=(0, 1))
                if learns:
                    psis.append(pseudo_derivative(torch.stack(potentials), layer.threshold, layer.gamma, layer.surrogate))

            # readout: integrate, score, and form the output error
            currents = F.linear(activity, weights[-1], readout.bias)
            potentials = []
            for current in currents:
                u = readout_step(current, u, readout.kappa)
                potentials.append(u)
            readout_trace = filter_traces(activity, alphas[-1], last_traces[-1])
            last_traces[-1] = readout_trace[-1]
            if not learns:
                continue

            scored = max(self.burn_in - start, 0)
            log_probs = torch.log_softmax(torch.stack(potentials[scored:]), dim=-1)
            loss_sum -= (log_probs * onehot).sum()
            logit_sum += torch.stack(potentials[scored:]).sum(dim=0)
            error = torch.zeros(stop - start, batch_size, n_classes, dtype=x.dtype)
            error[scored:] = (log_probs.exp() - onehot) / (batch_size * scored_steps)

            # learning signals, and their products with the traces into the tags
            signals = self.feedback.learning_signals(error, psis, feedback_matrices)
            chunk_coefficients = [c[start:stop].view(-1, 1, 1) for c in coefficients]
            _accumulate(tags, -1, error, readout_trace, chunk_coefficients[-1])
            for l in range(len(hidden)):
                local_signal = signals[l] * psis[l]
                if pre_traces[l] is None:
                    first_signal += (local_signal * chunk_coefficients[l]).sum(dim=0)
                else:
                    _accumulate(tags, l, local_signal, pre_traces[l], chunk_coefficients[l])

        if constant_input:
            tags.weight[0] += first_signal.T @ x[0]
            tags.bias[0] += first_signal.sum(dim=0)
        tags.wake_batches += 1

        predictions = logit_sum.argmax(dim=-1)
        return WakeResult(
            loss=float(loss_sum) / (batch_size * scored_steps),
            correct=int((predictions == labels).sum()),
            spikes_per_layer=[float(counts.sum()) for counts in neuron_spikes],
            neuron_spikes=neuron_spikes,
        )


def _accumulate(
    tags: GlialTags, layer: int, local_signal: torch.Tensor, pre_trace: torch.Tensor, coefficients: torch.Tensor
) -> None:
    """Add `sum_t local_signal_t^T pre_trace_t` `[post, pre]` and the bias term to the tags of `layer`."""
    n_post, n_pre = local_signal.shape[-1], pre_trace.shape[-1]
    tags.weight[layer].addmm_(local_signal.reshape(-1, n_post).T, pre_trace.reshape(-1, n_pre))
    tags.bias[layer] += (local_signal * coefficients).sum(dim=(0, 1))
