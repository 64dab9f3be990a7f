"""Neuron dynamics against membrane potentials computed by hand."""

import pytest
import torch

from microglia.encoding import DirectCurrent, Latency, PoissonRate
from microglia.neurons import (
    LeakyReadout,
    LIFLayer,
    Reset,
    Surrogate,
    initial_lif_state,
    is_constant_in_time,
    lif_step,
    lif_steps_into,
    pseudo_derivative,
    readout_logits,
    readout_loss,
    spike,
)

CURRENTS = [0.6, 0.6, 0.6, 0.0, 1.5]


def run_single_neuron(reset):
    state = initial_lif_state(1, 1)
    threshold = torch.tensor([1.0])
    trajectory = []
    for current in CURRENTS:
        state = lif_step(torch.tensor([[current]]), state, beta=0.5, threshold=threshold, reset=reset)
        trajectory.append((float(state.v), float(state.spikes)))
    return trajectory


def test_lif_reset_by_subtraction():
    # v1 = 0.6; v2 = 0.3 + 0.6; v3 = 0.45 + 0.6 spikes; v4 = 0.525 - 1; v5 = -0.2375 + 1.5 spikes
    expected = [(0.6, 0.0), (0.9, 0.0), (1.05, 1.0), (-0.475, 0.0), (1.2625, 1.0)]
    for (v, s), (v_expected, s_expected) in zip(run_single_neuron(Reset.SUBTRACT), expected):
        assert v == pytest.approx(v_expected, abs=1e-6)
        assert s == s_expected


def test_lif_reset_to_zero():
    # after the spike at step 3 the potential restarts from 0: v4 = 0, v5 = 1.5
    expected = [(0.6, 0.0), (0.9, 0.0), (1.05, 1.0), (0.0, 0.0), (1.5, 1.0)]
    for (v, s), (v_expected, s_expected) in zip(run_single_neuron(Reset.ZERO), expected):
        assert v == pytest.approx(v_expected, abs=1e-6)
        assert s == s_expected


def test_lif_threshold_per_neuron():
    state = initial_lif_state(1, 2)
    state = lif_step(torch.tensor([[0.8, 0.8]]), state, beta=0.9, threshold=torch.tensor([0.5, 1.0]))
    assert state.spikes.tolist() == [[1.0, 0.0]]


def test_lif_layer_matches_step_loop():
    torch.manual_seed(0)
    layer = LIFLayer(3, 4, beta=0.8, threshold=0.7)
    x = torch.rand(6, 2, 3)
    spikes, final = layer(x)

    state = initial_lif_state(2, 4)
    threshold = torch.full((4,), 0.7)
    with torch.no_grad():
        for t in range(6):
            current = x[t] @ layer.weight.T + layer.bias
            state = lif_step(current, state, beta=0.8, threshold=threshold)
            assert torch.equal(spikes[t], state.spikes)
    assert torch.allclose(final.v, state.v)


@pytest.mark.parametrize("reset", [Reset.SUBTRACT, Reset.ZERO])
@pytest.mark.parametrize("constant", [False, True])
def test_lif_steps_into_equals_step_loop_bitwise(reset, constant):
    generator = torch.Generator().manual_seed(3)
    threshold = torch.tensor([0.5, 1.0, 0.8, 1.2, 0.7])
    if constant:
        currents = (torch.rand(3, 5, generator=generator) * 1.2).expand(7, -1, -1)
    else:
        currents = torch.randn(7, 3, 5, generator=generator)
    start = lif_step(torch.randn(3, 5, generator=generator), initial_lif_state(3, 5), beta=0.85, threshold=threshold)

    potentials, spikes = torch.full((7, 3, 5), float("nan")), torch.full((7, 3, 5), float("nan"))
    final = lif_steps_into(
        currents, start, beta=0.85, threshold=threshold, reset=reset, potentials=potentials, spikes=spikes
    )

    state = start
    for t in range(7):
        state = lif_step(currents[t], state, beta=0.85, threshold=threshold, reset=reset)
        assert torch.equal(potentials[t], state.v), f"potential at step {t}"
        assert torch.equal(spikes[t], state.spikes), f"spikes at step {t}"
    assert torch.equal(final.v, state.v)
    assert torch.equal(final.spikes, state.spikes)
    assert spikes.sum() > 0, "no neuron spiked; the reset was never exercised"


def test_lif_steps_into_leaves_state_unchanged():
    state = lif_step(torch.tensor([[2.0, 0.3]]), initial_lif_state(1, 2), beta=0.9, threshold=torch.tensor([1.0, 1.0]))
    v_before, spikes_before = state.v.clone(), state.spikes.clone()
    lif_steps_into(
        torch.ones(2, 1, 2),
        state,
        beta=0.9,
        threshold=torch.tensor([1.0, 1.0]),
        reset=Reset.ZERO,
        potentials=torch.empty(2, 1, 2),
        spikes=torch.empty(2, 1, 2),
    )
    assert torch.equal(state.v, v_before)
    assert torch.equal(state.spikes, spikes_before)


@pytest.mark.parametrize("constant", [False, True])
def test_lif_layer_without_autograd_matches_autograd_path(constant):
    torch.manual_seed(2)
    layer = LIFLayer(3, 4, beta=0.8, threshold=0.7, reset=Reset.ZERO)
    x = DirectCurrent(6)(torch.rand(2, 3) * 2) if constant else torch.rand(6, 2, 3) * 2
    with_graph, final_with_graph = layer(x)
    with torch.no_grad():
        without_graph, final_without_graph = layer(x)

    assert with_graph.requires_grad
    assert not without_graph.requires_grad
    assert torch.equal(without_graph, with_graph.detach())
    assert torch.equal(final_without_graph.v, final_with_graph.v.detach())
    assert without_graph.sum() > 0, "no neuron spiked; the comparison would be vacuous"


def test_readout_integrates_with_leak():
    readout = LeakyReadout(1, 1, kappa=0.5)
    with torch.no_grad():
        readout.weight.fill_(1.0)
    u = readout(torch.tensor([1.0, 0.0, 2.0]).view(3, 1, 1))
    assert u.flatten().tolist() == pytest.approx([1.0, 0.5, 2.25])


def test_readout_logits_and_loss_skip_burn_in():
    u = torch.tensor([[[10.0, 0.0]], [[0.0, 1.0]], [[0.0, 3.0]]])
    assert readout_logits(u, burn_in=1).tolist() == [[0.0, 2.0]]
    labels = torch.tensor([1])
    expected = (torch.log1p(torch.exp(torch.tensor(-1.0))) + torch.log1p(torch.exp(torch.tensor(-3.0)))) / 2
    assert float(readout_loss(u, labels, burn_in=1)) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize(
    "v, expected", [(1.0, 0.3), (0.5, 0.15), (1.5, 0.15), (2.5, 0.0), (-1.0, 0.0)]
)
def test_triangle_pseudo_derivative(v, expected):
    psi = pseudo_derivative(torch.tensor([v]), torch.tensor([1.0]), 0.3, Surrogate.TRIANGLE)
    assert float(psi) == pytest.approx(expected)


def test_fast_sigmoid_pseudo_derivative():
    psi = pseudo_derivative(torch.tensor([1.0, 1.1]), torch.tensor([1.0]), 1.0, Surrogate.FAST_SIGMOID)
    assert psi.tolist() == pytest.approx([1.0, 0.25])


@pytest.mark.parametrize("surrogate", list(Surrogate))
def test_pseudo_derivative_into_buffer_is_bitwise_equal(surrogate):
    generator = torch.Generator().manual_seed(5)
    v = torch.randn(4, 3, 6, generator=generator) * 2.0
    threshold = torch.rand(6, generator=generator) + 0.3
    expected = pseudo_derivative(v, threshold, 0.7, surrogate)

    out = torch.full_like(v, float("nan"))
    result = pseudo_derivative(v, threshold, 0.7, surrogate, out=out)
    assert result is out
    assert torch.equal(out, expected)
    assert (expected > 0).any(), "psi is zero everywhere; the comparison would be vacuous"


def test_spike_backward_uses_pseudo_derivative():
    v = torch.tensor([0.5, 1.0, 3.0], requires_grad=True)
    spikes = spike(v, torch.tensor(1.0), 1.0, Surrogate.TRIANGLE)
    spikes.sum().backward()
    assert spikes.tolist() == [0.0, 1.0, 1.0]
    assert v.grad.tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_lif_layer_rejects_bad_parameters():
    with pytest.raises(ValueError, match="beta must be in"):
        LIFLayer(2, 2, beta=1.5)
    with pytest.raises(ValueError, match="threshold must be positive"):
        LIFLayer(2, 2, threshold=0.0)


def test_direct_current_is_a_stride_zero_view():
    x = torch.rand(4, 3)
    encoded = DirectCurrent(5)(x)
    assert encoded.shape == (5, 4, 3)
    assert is_constant_in_time(encoded)
    assert torch.equal(encoded[3], x)


def test_poisson_rate_matches_probability():
    generator = torch.Generator().manual_seed(0)
    spikes = PoissonRate(2000, generator)(torch.tensor([[0.0, 0.25, 1.0]]))
    rates = spikes.mean(dim=0).flatten()
    assert rates[0] == 0.0
    assert rates[1] == pytest.approx(0.25, abs=0.03)
    assert rates[2] == 1.0
    assert not is_constant_in_time(spikes)


def test_latency_code_spikes_once_earlier_for_larger_values():
    spikes = Latency(5)(torch.tensor([[1.0, 0.5, 0.0]]))
    assert spikes[:, 0, 0].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert spikes[:, 0, 1].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert spikes[:, 0, 2].sum() == 0.0
