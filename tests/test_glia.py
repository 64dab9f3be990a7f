"""Glial learning: traces, feedback pathways, the exact update against autograd, consolidation."""

import math

import pytest
import torch
import torch.nn.functional as F

from microglia.encoding import DirectCurrent
from microglia.glia import (
    FeedbackKind,
    FeedbackPathway,
    GlialLearner,
    GlialRule,
    GlialTags,
    constant_input_coefficients,
    decay_matrix,
    filter_traces,
)
from microglia.network import SpikingMLP
from microglia.neurons import Surrogate, pseudo_derivative


def tiny_network(sizes=(5, 7, 6, 3), seed=0, threshold=0.6):
    return SpikingMLP(list(sizes), beta=0.8, kappa=0.7, threshold=threshold, generator=torch.Generator().manual_seed(seed))


def test_filter_traces_matches_recursion():
    x = torch.rand(7, 2, 3)
    initial = torch.rand(2, 3)
    trace = initial.clone()
    expected = []
    for x_t in x:
        trace = 0.8 * trace + x_t
        expected.append(trace)
    assert torch.allclose(filter_traces(x, 0.8, initial), torch.stack(expected), atol=1e-6)


def test_filter_traces_matches_decay_matrix_product():
    x = torch.rand(6, 3, 4)
    initial = torch.rand(3, 4)
    decay = decay_matrix(6, 0.7)
    carry = 0.7 ** torch.arange(1, 7, dtype=torch.float32)
    expected = (decay @ x.reshape(6, -1)).view(6, 3, 4) + carry.view(-1, 1, 1) * initial
    out = torch.empty(6, 3, 4)
    result = filter_traces(x, 0.7, initial, out=out)
    assert result is out
    torch.testing.assert_close(result, expected, rtol=1e-6, atol=1e-6)


def test_constant_input_coefficients():
    assert constant_input_coefficients(3, 0.5).tolist() == pytest.approx([1.0, 1.5, 1.75])


def reference_exact_update(network, x, labels, burn_in):
    """Autograd through one step at a time, summed over steps: the truncated quantity of the exact pathway.

    The trajectory is recomputed with plain loops. At step t each membrane potential is
    rebuilt as `W xbar_t + b c_t` plus a detached remainder, so autograd sees the weight's
    effect through the membrane's own leak (the trace) and a spike's effect on the next
    layer within the same step, and nothing else.
    """
    steps, batch = x.shape[:2]
    hidden = list(network.hidden)
    readout = network.readout
    weights = [layer.weight.detach().clone().requires_grad_(True) for layer in network.synaptic_layers]
    biases = [layer.bias.detach().clone().requires_grad_(True) for layer in network.synaptic_layers]
    alphas = [layer.beta for layer in hidden] + [readout.kappa]

    # plain forward pass: potentials, spikes and presynaptic traces of every layer
    potentials = [torch.zeros(batch, layer.out_features) for layer in hidden]
    spikes = [torch.zeros(batch, layer.out_features) for layer in hidden]
    traces = [torch.zeros(batch, layer.in_features) for layer in network.synaptic_layers]
    u = torch.zeros(batch, readout.out_features)
    coefficient = [0.0] * len(alphas)
    total = 0.0
    for t in range(steps):
        activity = x[t]
        step_traces, step_potentials, step_coefficients = [], [], []
        for l, layer in enumerate(hidden):
            traces[l] = alphas[l] * traces[l] + activity
            coefficient[l] = alphas[l] * coefficient[l] + 1.0
            current = activity @ weights[l].detach().T + biases[l].detach()
            v = layer.beta * potentials[l] + current - layer.threshold * spikes[l]
            potentials[l], spikes[l] = v, (v >= layer.threshold).float()
            step_traces.append((traces[l].clone(), activity))
            step_potentials.append(v)
            step_coefficients.append(coefficient[l])
            activity = spikes[l]
        traces[-1] = alphas[-1] * traces[-1] + activity
        coefficient[-1] = alphas[-1] * coefficient[-1] + 1.0
        u = readout.kappa * u + activity @ weights[-1].detach().T + biases[-1].detach()
        if t < burn_in:
            continue

        # one-step graph: same-step paths, plus each weight's effect through the membrane leak
        rebuilt_input = None
        for l, layer in enumerate(hidden):
            trace, spikes_in = step_traces[l]
            if rebuilt_input is not None:
                trace = trace - spikes_in + rebuilt_input
            drive = trace @ weights[l].T + biases[l] * step_coefficients[l]
            v = step_potentials[l] - drive.detach() + drive
            psi = pseudo_derivative(v.detach(), layer.threshold, layer.gamma, layer.surrogate)
            spikes_out = (v >= layer.threshold).float().detach()
            rebuilt_input = spikes_out + (v - v.detach()) * psi
        trace = traces[-1] - activity + rebuilt_input
        drive = trace @ weights[-1].T + biases[-1] * coefficient[-1]
        readout_potential = u - drive.detach() + drive
        total = total + F.cross_entropy(readout_potential, labels) / (steps - burn_in)

    total.backward()
    return [w.grad for w in weights], [b.grad for b in biases]


@pytest.mark.parametrize("constant", [True, False])
@pytest.mark.parametrize("chunk_steps", [1, 3, 8])
def test_exact_update_equals_autograd_reference(constant, chunk_steps):
    torch.manual_seed(1)
    network = tiny_network()
    images = torch.rand(4, 5) * 1.5
    x = DirectCurrent(8)(images) if constant else torch.rand(8, 4, 5) * 1.5
    labels = torch.tensor([0, 2, 1, 2])

    learner = GlialLearner(network, FeedbackPathway("exact", network), burn_in=2, chunk_steps=chunk_steps)
    tags = GlialTags(network)
    learner.wake(x, labels, tags)
    expected_weights, expected_biases = reference_exact_update(network, x, labels, burn_in=2)

    for layer, (tag, expected) in enumerate(zip(tags.weight, expected_weights)):
        assert expected.abs().sum() > 0, f"reference of layer {layer} is all zero; the test would be vacuous"
        torch.testing.assert_close(tag, expected, rtol=1e-4, atol=1e-6, msg=f"weight tags of layer {layer}")
    for layer, (tag, expected) in enumerate(zip(tags.bias, expected_biases)):
        torch.testing.assert_close(tag, expected, rtol=1e-4, atol=1e-6, msg=f"bias tags of layer {layer}")


def test_constant_input_shortcut_matches_general_path():
    network = tiny_network()
    x = DirectCurrent(9)(torch.rand(3, 5))
    labels = torch.tensor([1, 0, 2])
    learner = GlialLearner(network, FeedbackPathway("sign", network), burn_in=2, chunk_steps=4)
    hoisted, general = GlialTags(network), GlialTags(network)
    first = learner.wake(x, labels, hoisted)
    second = learner.wake(x.contiguous(), labels, general)
    assert first.loss == pytest.approx(second.loss)
    for a, b in zip(hoisted.weight + hoisted.bias, general.weight + general.bias):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_exact_update_parallel_to_bptt_gradient():
    # one hidden layer: the truncated update points along the full BPTT gradient
    torch.manual_seed(0)
    network = tiny_network(sizes=(6, 30, 4), threshold=1.0)
    x = DirectCurrent(10)(torch.rand(16, 6) * 2)
    labels = torch.randint(0, 4, (16,))

    tags = GlialTags(network)
    GlialLearner(network, FeedbackPathway("exact", network), burn_in=2).wake(x, labels, tags)
    from microglia.neurons import readout_loss

    readout_loss(network(x), labels, burn_in=2).backward()
    for layer, tag in zip(network.synaptic_layers, tags.weight):
        cosine = F.cosine_similarity(tag.flatten(), layer.weight.grad.flatten(), dim=0)
        assert cosine > 0.9


def test_sign_feedback_is_scaled_sign_of_forward_weights():
    network = tiny_network()
    matrices = FeedbackPathway("sign", network).matrices()
    for matrix, layer in zip(matrices, network.synaptic_layers[1:]):
        weight = layer.weight.detach()
        expected = torch.sign(weight) * weight.abs().mean()
        torch.testing.assert_close(matrix, expected)


def test_layered_learning_signals_follow_dense_feedback():
    network = tiny_network()
    pathway = FeedbackPathway("random", network, torch.Generator().manual_seed(3))
    error = torch.randn(4, 2, 3)
    psis = [torch.rand(4, 2, 7), torch.rand(4, 2, 6)]
    signals = pathway.learning_signals(error, psis)
    f_second, f_readout = pathway.matrices()
    assert f_readout.shape == (3, 6)
    assert f_second.shape == (6, 7)
    torch.testing.assert_close(signals[1], error @ f_readout)
    torch.testing.assert_close(signals[0], (signals[1] * psis[1]) @ f_second)


def test_direct_feedback_broadcasts_error_to_every_layer():
    network = tiny_network()
    pathway = FeedbackPathway("direct", network, torch.Generator().manual_seed(3))
    matrices = pathway.matrices()
    assert [tuple(m.shape) for m in matrices] == [(3, 7), (3, 6)]
    error = torch.randn(4, 2, 3)
    signals = pathway.learning_signals(error, [torch.rand(4, 2, 7), torch.rand(4, 2, 6)])
    for signal, matrix in zip(signals, matrices):
        torch.testing.assert_close(signal, error @ matrix)
    # a positive error on one class pushes each neuron along the sign of its broadcast weight
    unit = torch.zeros(1, 1, 3)
    unit[..., 1] = 1.0
    for signal, matrix in zip(pathway.learning_signals(unit, []), matrices):
        assert torch.equal(torch.sign(signal.flatten()), torch.sign(matrix[1]))


def test_fixed_feedback_matrices_do_not_change_with_weights():
    network = tiny_network()
    pathway = FeedbackPathway("random", network, torch.Generator().manual_seed(3))
    before = [m.clone() for m in pathway.matrices()]
    with torch.no_grad():
        for layer in network.synaptic_layers:
            layer.weight.mul_(-2.0)
    for old, new in zip(before, pathway.matrices()):
        assert torch.equal(old, new)


@pytest.mark.parametrize("feedback", list(FeedbackKind))
def test_silent_layer_receives_no_update(feedback):
    # inhibitory input weights keep every potential <= 0, where psi is exactly 0: no learning signal
    network = tiny_network(sizes=(5, 7, 3), threshold=1.0)
    with torch.no_grad():
        network.hidden[0].weight.abs_().neg_()
    rule = GlialRule(network, feedback=feedback, lr=0.1, burn_in=1, generator=torch.Generator().manual_seed(0))
    hidden_before = network.hidden[0].weight.detach().clone()
    readout_before = network.readout.bias.detach().clone()
    rule.train_batch(DirectCurrent(6)(torch.rand(4, 5)), torch.tensor([0, 1, 2, 0]))
    assert torch.equal(network.hidden[0].weight, hidden_before)
    assert not torch.equal(network.readout.bias, readout_before)


def test_sleep_interval_accumulates_before_consolidating():
    network = tiny_network()
    rule = GlialRule(network, feedback="sign", lr=0.01, sleep_interval=3, burn_in=1)
    x = DirectCurrent(6)(torch.rand(4, 5))
    labels = torch.tensor([0, 1, 2, 0])
    before = network.readout.weight.detach().clone()

    writes = [rule.train_batch(x, labels).weight_writes for _ in range(3)]
    assert writes[0] == writes[1] == 0
    assert writes[2] > 0
    assert not torch.equal(network.readout.weight, before)
    assert rule.tags.wake_batches == 0


def test_wake_reports_loss_and_accuracy():
    network = tiny_network()
    learner = GlialLearner(network, FeedbackPathway("sign", network), burn_in=2)
    x = DirectCurrent(8)(torch.rand(4, 5))
    labels = torch.tensor([0, 2, 1, 2])
    result = learner.wake(x, labels, GlialTags(network))

    with torch.no_grad():
        from microglia.neurons import readout_logits, readout_loss

        u = network(x)
        assert result.loss == pytest.approx(float(readout_loss(u, labels, 2)), rel=1e-5)
        assert result.correct == int((readout_logits(u, 2).argmax(-1) == labels).sum())
    assert len(result.spikes_per_layer) == 2
    assert math.isfinite(result.loss)


def test_wake_rejects_burn_in_covering_all_steps():
    network = tiny_network()
    learner = GlialLearner(network, FeedbackPathway("sign", network), burn_in=4)
    with pytest.raises(ValueError, match=r"steps \(4\) must exceed burn_in \(4\)"):
        learner.wake(DirectCurrent(4)(torch.rand(2, 5)), torch.tensor([0, 1]), GlialTags(network))
