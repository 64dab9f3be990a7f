"""Structural plasticity and homeostasis: territories, prune and grow, density schedule, thresholds."""

import copy
import math

import pytest
import torch

from microglia.errors import CheckpointError
from microglia.glia import (
    Consolidator,
    DensitySchedule,
    GlialRule,
    GlialTags,
    Homeostasis,
    StructuralPlasticity,
)
from microglia.glia.territories import (
    plan_changes,
    select_growth_guided,
    select_growth_random,
    select_prune,
    target_synapse_count,
    territory_slices,
)
from microglia.network import SpikingMLP


def test_territory_slices_cover_layer():
    assert territory_slices(5, 2) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert territory_slices(4, 10) == [slice(0, 4)]
    with pytest.raises(ValueError, match="territory_size must be >= 1, got 0"):
        territory_slices(4, 0)


def test_target_synapse_count_keeps_one():
    assert target_synapse_count(100, 0.1) == 10
    assert target_synapse_count(10, 0.01) == 1
    assert target_synapse_count(10, 1.0) == 10


@pytest.mark.parametrize(
    "present, capacity, target, fraction, expected",
    [
        (10, 20, 10, 0.3, (3, 3)),  # steady: exchange only
        (10, 20, 6, 0.3, (7, 3)),  # shrinking: exchange plus the surplus
        (6, 20, 10, 0.5, (3, 7)),  # growing: exchange plus the deficit
        (20, 20, 20, 0.3, (0, 0)),  # dense: nothing may grow, so nothing is exchanged
        (18, 20, 18, 0.5, (2, 2)),  # exchange capped by the 2 absent synapses
        (10, 20, 10, 0.0, (0, 0)),
    ],
)
def test_plan_changes_counts(present, capacity, target, fraction, expected):
    pruned, grown = plan_changes(present, capacity, target, fraction)
    assert (pruned, grown) == expected
    assert present - pruned + grown == target


def test_select_prune_smallest_present():
    weight = torch.tensor([[0.5, -0.1, 0.0], [0.2, 0.9, -0.05]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    assert select_prune(weight, mask, 2).tolist() == [5, 1]
    assert select_prune(weight, mask, 0).tolist() == []


def test_select_prune_ties_lower_index():
    weight = torch.tensor([[0.3, -0.3, 0.3, 0.1]])
    mask = torch.ones(1, 4)
    assert select_prune(weight, mask, 2).tolist() == [3, 0]


def test_select_prune_rejects_excess():
    with pytest.raises(ValueError, match="cannot prune 3 synapses, the territory has only 2"):
        select_prune(torch.ones(1, 3), torch.tensor([[1.0, 0.0, 1.0]]), 3)


def test_select_growth_guided_largest_candidate():
    score = torch.tensor([[5.0, 0.2, 0.4], [0.9, 0.4, 0.0]])
    candidates = torch.tensor([[False, True, True], [True, True, True]])
    assert select_growth_guided(score, candidates, 3).tolist() == [3, 2, 4]


def test_select_growth_random_only_candidates():
    candidates = torch.tensor([[False, True, False, True], [True, False, False, True]])
    chosen = select_growth_random(candidates, 3, torch.Generator().manual_seed(1))
    assert len(set(chosen.tolist())) == 3
    assert set(chosen.tolist()) <= {1, 3, 4, 7}
    again = select_growth_random(candidates, 3, torch.Generator().manual_seed(1))
    assert chosen.tolist() == again.tolist()
    with pytest.raises(ValueError, match="cannot grow 5 synapses, the territory has only 4 candidates"):
        select_growth_random(candidates, 5, None)


def test_density_schedule_values():
    constant = DensitySchedule(final=0.2, initial=0.2, decay_steps=10)
    assert [constant.density(step) for step in (0, 5, 100)] == [0.2, 0.2, 0.2]

    cosine = DensitySchedule(final=0.1, initial=1.0, decay_steps=10)
    assert cosine.density(0) == pytest.approx(1.0)
    assert cosine.density(5) == pytest.approx(0.55)
    assert cosine.density(10) == pytest.approx(0.1)
    assert cosine.density(25) == pytest.approx(0.1)
    # one quarter of the way: 0.1 + 0.9 * (1 + cos(pi / 4)) / 2
    assert cosine.density(2.5) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert DensitySchedule().is_dense
    assert not cosine.is_dense


def test_exchange_scale_values():
    constant = DensitySchedule(final=0.1, initial=1.0, decay_steps=10)
    assert [constant.exchange_scale(step) for step in (0, 7, 50)] == [1.0, 1.0, 1.0]

    cosine = DensitySchedule(final=0.1, initial=1.0, decay_steps=10, exchange_steps=20)
    assert cosine.exchange_scale(0) == pytest.approx(1.0)
    assert cosine.exchange_scale(10) == pytest.approx(0.5)
    assert cosine.exchange_scale(20) == pytest.approx(0.0)
    assert cosine.exchange_scale(30) == pytest.approx(0.0)


def test_density_schedule_rejects_invalid():
    with pytest.raises(ValueError, match="final density must be in"):
        DensitySchedule(final=0.0)
    with pytest.raises(ValueError, match="decay_steps must be >= 1, got 0"):
        DensitySchedule(final=0.5, initial=1.0, decay_steps=0)
    with pytest.raises(ValueError, match="exchange_steps must be >= 0, got -1"):
        DensitySchedule(final=0.5, initial=1.0, exchange_steps=-1)


def hand_made_structure(regrowth):
    """A 3-4-2 network with hand-made weights, masks and tags, territories of 2 neurons, density 0.5."""
    network = SpikingMLP([3, 4, 2])
    hidden, readout = network.hidden[0], network.readout
    with torch.no_grad():
        hidden.mask.copy_(torch.tensor([[1.0, 1, 0], [0, 1, 1], [1, 0, 1], [0, 1, 0]]))
        hidden.weight.copy_(torch.tensor([[0.5, -0.1, 0.3], [0.2, 0.9, -0.05], [0.4, -0.7, 0.6], [0.05, 0.8, -0.3]]))
        hidden.weight.mul_(hidden.mask)
        readout.weight.copy_(torch.tensor([[0.1, -0.8, 0.3, 0.05], [0.7, -0.2, 0.6, 0.4]]))
    consolidator = Consolidator(network, "adam", 1e-3)
    structure = StructuralPlasticity(
        network,
        consolidator,
        DensitySchedule(final=0.5, initial=0.5),
        prune_fraction=1 / 3,
        regrowth=regrowth,
        territory_size=2,
        generator=torch.Generator().manual_seed(0),
    )
    tags = GlialTags(network)
    tags.weight[0].copy_(torch.tensor([[9.0, 9.0, 0.3], [-0.4, 9.0, 9.0], [5.0, 0.2, 9.0], [-0.9, 9.0, 0.5]]))
    tags.wake_batches = 1
    structure.record_tags(tags)
    return network, structure


def test_guided_step_exact_indices():
    network, structure = hand_made_structure("guided")
    pruned, grown = structure.step()

    # territory rows 0-1: 4 present, target 3, exchange 1; rows 2-3: 3 present, target 3, exchange 1
    hidden = network.hidden[0]
    expected_mask = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 0, 1], [1, 1, 0]])
    assert hidden.mask.tolist() == expected_mask.tolist()
    expected_weight = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 0.6], [0.0, 0.8, 0.0]])
    assert torch.equal(hidden.weight.detach(), expected_weight)

    # readout (one territory of 2 neurons): 8 present, target 4, nothing absent to grow into
    readout = network.readout
    assert readout.mask.tolist() == [[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 1.0]]
    assert pruned == [3, 4]
    assert grown == [2, 0]
    assert structure.pruned == [3, 4]
    assert structure.grown == [2, 0]
    assert all(float(score.abs().sum()) == 0.0 for score in structure.scores)


def test_random_step_counts_per_territory():
    network, structure = hand_made_structure("random")
    before = network.hidden[0].mask.clone()
    pruned, grown = structure.step()

    mask = network.hidden[0].mask
    assert pruned == [3, 4]
    assert grown == [2, 0]
    assert mask[0:2].sum() == 3
    assert mask[2:4].sum() == 3
    grown_positions = (mask == 1) & (before == 0)
    assert int(grown_positions[0:2].sum()) == 1
    assert int(grown_positions[2:4].sum()) == 1
    # the pruned synapses are the same as with guided growth: smallest |W|
    pruned_positions = (mask == 0) & (before == 1)
    assert pruned_positions.nonzero().tolist() == [[0, 1], [1, 2], [2, 0]]
    assert float(network.hidden[0].weight.detach()[grown_positions].abs().sum()) == 0.0


def tiny_batches(count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(4, 6, generator=generator).expand(6, -1, -1), torch.randint(0, 3, (4,), generator=generator))
        for _ in range(count)
    ]


@pytest.mark.parametrize("consolidation", ["sgd", "adam", "sign", "rprop"])
def test_pruned_weights_stay_zero(consolidation):
    torch.manual_seed(0)
    network = SpikingMLP([6, 8, 3], threshold=0.5, generator=torch.Generator().manual_seed(0))
    rule = GlialRule(
        network,
        consolidation=consolidation,
        lr=1e-2,
        density=DensitySchedule(final=0.5, initial=1.0, decay_steps=1),
        prune_fraction=0.0,
        structure_interval=3,
        generator=torch.Generator().manual_seed(0),
    )
    batches = tiny_batches(12)
    for x, labels in batches[:3]:
        rule.train_batch(x, labels)
    assert [layer.density for layer in network.synaptic_layers] == [0.5, 0.5]

    absent = [layer.mask == 0 for layer in network.synaptic_layers]
    state = rule.optimizer.state
    for layer, layer_absent in zip(network.synaptic_layers, absent):
        for key, value in state[layer.weight].items():
            if isinstance(value, torch.Tensor) and value.shape == layer_absent.shape:
                expected = rule.consolidator.lr if key == "step_size" else 0.0
                assert bool((value[layer_absent] == expected).all()), f"{key} of pruned synapses not reset"

    before = [layer.weight.detach().clone() for layer in network.synaptic_layers]
    for x, labels in batches[3:]:
        rule.train_batch(x, labels)
        for layer, layer_absent in zip(network.synaptic_layers, absent):
            assert bool((layer.mask[layer_absent] == 0).all())
            assert bool((layer.weight[layer_absent] == 0).all()), f"{consolidation} revived a pruned weight"
    changed = sum(int((layer.weight != old).sum()) for layer, old in zip(network.synaptic_layers, before))
    assert changed > 0, "the rule changed no present weight"


def test_adam_momentum_does_not_revive():
    network = SpikingMLP([6, 8, 3], threshold=0.5, generator=torch.Generator().manual_seed(0))
    rule = GlialRule(network, consolidation="adam", lr=1e-2, generator=torch.Generator().manual_seed(0))
    for x, labels in tiny_batches(3):
        rule.train_batch(x, labels)
    layer = network.hidden[0]
    momentum = rule.optimizer.state[layer.weight]["exp_avg"]
    pruned = momentum.abs() > 1e-4
    assert int(pruned.sum()) >= 10, "the test needs synapses with momentum"

    # prune by the mask alone, without resetting the optimizer state
    with torch.no_grad():
        layer.mask[pruned] = 0.0
        layer.weight.mul_(layer.mask)
    for x, labels in tiny_batches(3, seed=1):
        rule.train_batch(x, labels)
        assert bool((layer.weight[pruned] == 0).all())


def test_grown_synapse_starts_fresh():
    network, structure = hand_made_structure("guided")
    optimizer = structure.consolidator.optimizer
    layer = network.hidden[0]
    layer.weight.grad = torch.ones_like(layer.weight)
    network.readout.weight.grad = torch.ones_like(network.readout.weight)
    optimizer.step()
    layer.weight.grad = None
    network.readout.weight.grad = None
    with torch.no_grad():
        layer.weight.mul_(layer.mask)

    structure.step()
    state = optimizer.state[layer.weight]
    weight = layer.weight.detach()
    assert float(weight[1, 0]) == 0.0
    assert float(weight[3, 0]) == 0.0
    for key in ("exp_avg", "exp_avg_sq"):
        assert float(state[key][1, 0]) == 0.0
        assert float(state[key][3, 0]) == 0.0
        assert float(state[key][0, 0]) != 0.0, "state of a kept synapse must stay"


@torch.no_grad()
def firing_rate(network, x):
    return float(network.simulate(x).spikes[0].mean())


@pytest.mark.parametrize(
    "low, high", [(0.0, 0.02), (-0.1, 0.0), (0.5, 1.0)], ids=["silent", "negative-input", "saturated"]
)
def test_homeostasis_moves_rate_to_target(low, high):
    network = SpikingMLP([10, 20, 5], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        network.hidden[0].weight.uniform_(low, high, generator=torch.Generator().manual_seed(1))
    x = torch.ones(10, 8, 10)
    target = 0.2
    start = firing_rate(network, x)
    assert start == 0.0 or start == 1.0, "the fixed input must silence or saturate the layer"

    homeostasis = Homeostasis(network, target_rate=target, rate=1.0)
    for _ in range(60):
        with torch.no_grad():
            spikes = network.simulate(x).spikes
        homeostasis.record([layer_spikes.sum(dim=(0, 1)) for layer_spikes in spikes], x.shape[0] * x.shape[1])
        homeostasis.update()
    end = firing_rate(network, x)

    assert abs(end - target) < abs(start - target)
    assert abs(end - target) < 0.15
    if start == 0.0:
        assert end > start
        assert float(network.hidden[0].threshold.max()) < 1.0
        assert float(network.hidden[0].bias.detach().min()) > 0.0
    else:
        assert end < start
        assert float(network.hidden[0].threshold.min()) > 1.0


def test_homeostasis_threshold_clipped():
    network = SpikingMLP([4, 3, 2])
    homeostasis = Homeostasis(network, target_rate=0.5, rate=100.0)
    homeostasis.record([torch.zeros(3)], 10)
    homeostasis.update()
    assert network.hidden[0].threshold.tolist() == pytest.approx([0.05, 0.05, 0.05])
    # the bias moves by eta * theta * (r* - r) with the threshold before the update
    assert network.hidden[0].bias.tolist() == pytest.approx([50.0, 50.0, 50.0])
    assert homeostasis.neuron_steps == 0


def test_homeostasis_rejects_invalid():
    network = SpikingMLP([4, 3, 2])
    with pytest.raises(ValueError, match="target_rate must be in"):
        Homeostasis(network, target_rate=1.0, rate=0.1)
    with pytest.raises(ValueError, match="homeostasis rate must be positive"):
        Homeostasis(network, target_rate=0.1, rate=0.0)


def structural_rule(seed):
    network = SpikingMLP([6, 8, 3], threshold=0.5, generator=torch.Generator().manual_seed(seed))
    rule = GlialRule(
        network,
        feedback="random",
        consolidation="rprop",
        lr=1e-2,
        generator=torch.Generator().manual_seed(seed),
        density=DensitySchedule(final=0.3, initial=0.8, decay_steps=3),
        prune_fraction=0.2,
        regrowth="random",
        territory_size=3,
        structure_interval=2,
        target_rate=0.2,
    )
    return network, rule


def test_rule_state_continues_exactly():
    network, rule = structural_rule(0)
    batches = tiny_batches(10)
    for x, labels in batches[:5]:
        rule.train_batch(x, labels)
    saved_network = copy.deepcopy(network.state_dict())
    saved_rule = copy.deepcopy(rule.state_dict())
    for x, labels in batches[5:]:
        rule.train_batch(x, labels)

    other_network, other_rule = structural_rule(7)
    other_network.load_state_dict(saved_network)
    other_rule.load_state_dict(saved_rule)
    for x, labels in batches[5:]:
        other_rule.train_batch(x, labels)

    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, other_network.state_dict()[name]), name
    assert rule.pruned == other_rule.pruned
    assert rule.grown == other_rule.grown
    assert sum(rule.pruned) > 0


def test_rule_state_rejects_mismatch():
    network, rule = structural_rule(0)
    dense = GlialRule(SpikingMLP([6, 8, 3]), feedback="random", consolidation="rprop", target_rate=0.2)
    with pytest.raises(CheckpointError, match="has structure state, but this rule was built without it"):
        dense.load_state_dict(rule.state_dict())


def test_wake_reports_neuron_spikes():
    network = SpikingMLP([6, 8, 5, 3], threshold=0.5, generator=torch.Generator().manual_seed(0))
    rule = GlialRule(network, generator=torch.Generator().manual_seed(0))
    x, labels = tiny_batches(1)[0]
    wake = rule.learner.wake(x, labels, rule.tags)
    assert [counts.shape for counts in wake.neuron_spikes] == [(8,), (5,)]
    assert [float(counts.sum()) for counts in wake.neuron_spikes] == wake.spikes_per_layer
    expected = [spikes.sum(dim=(0, 1)) for spikes in network.simulate(x).spikes]
    for counts, reference in zip(wake.neuron_spikes, expected):
        assert torch.equal(counts, reference)
