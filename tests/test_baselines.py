"""Perturbation learning and the ReLU MLP baseline."""

import copy

import pytest
import torch

from microglia.baselines import ANNRule, BPTTRule, PerturbationRule, ReLUMLP, centered_ranks
from microglia.data import load_dataset
from microglia.encoding import DirectCurrent
from microglia.network import SpikingMLP
from microglia.neurons import readout_loss
from microglia.training import TrainConfig, Trainer


def test_centered_ranks_hand_values():
    assert centered_ranks(torch.tensor([3.0, 1.0, 2.0])).tolist() == pytest.approx([0.5, -0.5, 0.0])
    # ties share their mean rank: ranks 1 and 2 of 0..3 become 1.5 each
    assert centered_ranks(torch.tensor([1.0, 1.0, 2.0, 0.0])).tolist() == pytest.approx([0.0, 0.0, 0.5, -0.5])


def test_centered_ranks_rejects_single_loss():
    with pytest.raises(ValueError, match="at least 2 losses, got 1"):
        centered_ranks(torch.tensor([1.0]))


def separable_problem(seed=0):
    """Two classes of 6 features; the class decides which half of the features is brighter."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(64) % 2
    images = 0.2 * torch.rand(64, 6, generator=generator)
    images[labels == 0, :3] += 0.8
    images[labels == 1, 3:] += 0.8
    return DirectCurrent(8)(images), labels


@pytest.mark.parametrize("rank", [0, 2])
def test_perturbation_lowers_loss_of_tiny_problem(rank):
    x, labels = separable_problem()
    network = SpikingMLP([6, 16, 2], threshold=0.5, generator=torch.Generator().manual_seed(0))
    rule = PerturbationRule(
        network, lr=0.03, sigma=0.05, population=6, rank=rank, burn_in=2, generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        before = float(readout_loss(network(x), labels, 2))
    for _ in range(40):
        rule.train_batch(x, labels)
    with torch.no_grad():
        after = float(readout_loss(network(x), labels, 2))
    assert after < 0.5 * before


def test_perturbation_restores_weights_after_estimate():
    x, labels = separable_problem()
    network = SpikingMLP([6, 16, 2], generator=torch.Generator().manual_seed(0))
    rule = PerturbationRule(network, population=3, generator=torch.Generator().manual_seed(1))
    before = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    gradient, losses = rule.estimate_gradient(x, labels)
    assert losses.shape == (6,)
    assert [g.shape for g in gradient] == [p.shape for p in rule.parameters]
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, before[name])


def test_low_rank_directions_masked():
    network = SpikingMLP([12, 10, 4], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        network.hidden[0].mask[:, 0] = 0.0
    rule = PerturbationRule(network, rank=2, generator=torch.Generator().manual_seed(0))
    directions = rule.sample_directions()
    assert int(torch.linalg.matrix_rank(directions[0])) == 2
    assert int(torch.linalg.matrix_rank(directions[2])) == 2
    assert torch.equal(directions[0][:, 0], torch.zeros(10))
    assert directions[1].shape == (10,)


def test_perturbation_state_dict_continues_identically():
    x, labels = separable_problem()
    networks = [SpikingMLP([6, 16, 2], generator=torch.Generator().manual_seed(0)) for _ in range(2)]
    rules = [PerturbationRule(n, population=2, generator=torch.Generator().manual_seed(5)) for n in networks]
    rules[0].train_batch(x, labels)
    networks[1].load_state_dict(networks[0].state_dict())
    rules[1].train_batch(x, labels)  # creates the Adam state, then overwritten below
    networks[1].load_state_dict(networks[0].state_dict())
    # a deep copy, as a checkpoint file would hold: optimizer state dicts share their tensors
    rules[1].load_state_dict(copy.deepcopy(rules[0].state_dict()))

    for rule in rules:
        rule.train_batch(x, labels)
    for a, b in zip(networks[0].parameters(), networks[1].parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(sigma=0.0), "sigma must be a finite number > 0, got 0.0"),
        (dict(population=0), "population must be >= 1 antithetic pair, got 0"),
        (dict(rank=-1), "rank must be >= 0"),
    ],
)
def test_perturbation_rejects_invalid_settings(settings, message):
    network = SpikingMLP([6, 4, 2])
    with pytest.raises(ValueError, match=message):
        PerturbationRule(network, **settings)


def test_relu_mlp_learns_separable_problem():
    x, labels = separable_problem()
    network = ReLUMLP([6, 16, 2], generator=torch.Generator().manual_seed(0))
    rule = ANNRule(network, lr=1e-2)
    results = [rule.train_batch(x, labels) for _ in range(50)]
    assert results[-1].loss < 0.2 * results[0].loss
    assert results[-1].correct == 64
    assert results[-1].spikes_per_layer == [0.0]


def test_relu_mlp_rejects_missing_hidden_layer():
    with pytest.raises(ValueError, match=r"at least one hidden layer and classes, got \[6, 2\]"):
        ReLUMLP([6, 2])


def test_ann_run_reports_no_spikes(tmp_path):
    config = TrainConfig(rule="ann", hidden=(50,), epochs=3, lr=1e-2, out=str(tmp_path / "run"))
    result = Trainer(config, dataset=load_dataset("digits"), progress=False).run()
    assert result.test.accuracy >= 0.9
    assert result.test.spikes_per_sample is None
    assert result.history[-1]["firing_rate"] is None
    assert result.history[-1]["alignment_angle_deg"] is None


def test_perturbation_run_through_trainer(tmp_path):
    config = TrainConfig(
        rule="perturbation", hidden=(30,), epochs=1, steps=6, perturbation_pairs=4, perturbation_rank=2,
        lr=1e-2, out=str(tmp_path / "run"),
    )
    digits = load_dataset("digits")
    result = Trainer(config, dataset=digits, progress=False).run()

    # every estimate is nonzero, so Adam writes at most every present synapse and bias per minibatch
    n_train = len(digits.train)
    batches = -(-n_train // config.batch_size)
    writes_per_batch = 64 * 30 + 30 * 10 + 30 + 10
    assert 0.9 * batches * writes_per_batch / n_train < result.history[0]["weight_writes_per_sample"]
    assert result.history[0]["weight_writes_per_sample"] <= batches * writes_per_batch / n_train
    assert result.history[0]["train_loss"] < 2.5
    assert result.test.spikes_per_sample > 0


def changed_values(before: dict, after: dict) -> int:
    return sum(int((after[name] != before[name]).sum()) for name in before if name.endswith(("weight", "bias")))


@pytest.mark.parametrize("kind", ["bptt", "ann"])
def test_writes_count_only_changed_values(kind):
    generator = torch.Generator().manual_seed(0)
    x, labels = separable_problem()
    batch = x.clone()
    batch[:, :, 0] = 0.0  # a silent input feature: its synapses get no gradient and keep their value
    if kind == "bptt":
        rule = BPTTRule(SpikingMLP([6, 8, 2], generator=generator), lr=1e-2)
    else:
        rule = ANNRule(ReLUMLP([6, 8, 2], generator=generator), lr=1e-2)

    for _ in range(3):
        before = copy.deepcopy(rule.network.state_dict())
        result = rule.train_batch(batch, labels)
        after = rule.network.state_dict()

        assert result.weight_writes == changed_values(before, after)
        assert result.weight_writes <= 6 * 8 + 8 + 8 * 2 + 2 - 8
