"""Alignment of the glial update with the BPTT gradient."""

import math

import pytest
import torch

from microglia.encoding import DirectCurrent
from microglia.glia import GlialRule
from microglia.network import SpikingMLP
from microglia.training.alignment import bptt_gradient, glial_update, measure_alignment


def probe(seed=0, batch=32):
    generator = torch.Generator().manual_seed(seed)
    x = DirectCurrent(10)(torch.rand(batch, 20, generator=generator))
    labels = torch.randint(0, 4, (batch,), generator=generator)
    return x, labels


def make_rule(feedback, sizes=(20, 30, 4), seed=0):
    network = SpikingMLP(list(sizes), threshold=0.5, generator=torch.Generator().manual_seed(seed))
    return GlialRule(network, feedback=feedback, burn_in=2, generator=torch.Generator().manual_seed(seed))


def test_readout_update_is_the_exact_gradient():
    # the readout has no feedback path: its glial update is the gradient itself for every kind
    x, labels = probe()
    for feedback in ("exact", "random"):
        alignment = measure_alignment(make_rule(feedback), x, labels)
        assert alignment.angle_deg[-1] < 0.5
        assert alignment.sign_agreement[-1] > 0.99


def test_exact_feedback_aligns_better_than_random():
    x, labels = probe()
    exact = measure_alignment(make_rule("exact"), x, labels)
    random = measure_alignment(make_rule("random"), x, labels)
    assert exact.angle_deg[0] < 20.0
    assert exact.sign_agreement[0] > 0.8
    assert random.angle_deg[0] > exact.angle_deg[0] + 20.0


def test_angle_matches_hand_computation():
    x, labels = probe()
    rule = make_rule("sign")
    updates = glial_update(rule, x, labels)
    gradients = bptt_gradient(rule, x, labels)
    a, g = updates[0].flatten().double(), gradients[0].flatten().double()
    expected = math.degrees(math.acos(float(a @ g / (a.norm() * g.norm()))))
    agreement = float((torch.sign(a) == torch.sign(g)).double().mean())

    alignment = measure_alignment(rule, x, labels)
    assert alignment.angle_deg[0] == pytest.approx(expected, abs=1e-9)
    assert alignment.sign_agreement[0] == pytest.approx(agreement, abs=1e-12)
    assert len(alignment.angle_deg) == len(alignment.sign_agreement) == 2


def test_measuring_leaves_rule_and_weights_alone():
    x, labels = probe()
    rule = make_rule("sign")
    rule.train_batch(x, labels)
    rule.tags.weight[0].fill_(0.25)
    rule.tags.wake_batches = 3
    weights = {name: tensor.clone() for name, tensor in rule.network.state_dict().items()}
    optimizer_state = {key: value["exp_avg"].clone() for key, value in enumerate(rule.optimizer.state.values())}

    measure_alignment(rule, x, labels)

    assert rule.tags.wake_batches == 3
    assert torch.equal(rule.tags.weight[0], torch.full_like(rule.tags.weight[0], 0.25))
    for name, tensor in rule.network.state_dict().items():
        assert torch.equal(tensor, weights[name])
    for key, value in enumerate(rule.optimizer.state.values()):
        assert torch.equal(value["exp_avg"], optimizer_state[key])
    assert all(parameter.grad is None for parameter in rule.network.parameters())


def test_silent_layer_has_no_angle():
    x, labels = probe()
    rule = make_rule("exact")
    with torch.no_grad():
        rule.network.hidden[0].weight.abs_().neg_()
    alignment = measure_alignment(rule, x, labels)
    assert alignment.angle_deg[0] is None
    assert alignment.sign_agreement[0] == 1.0
