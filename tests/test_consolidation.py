"""Consolidation rules on hand-made tags, and weight-write counting over sleeps."""

import pytest
import torch

from microglia.encoding import DirectCurrent
from microglia.glia import ConsolidationRule, Consolidator, GlialRule, GlialTags
from microglia.network import SpikingMLP
from microglia.neurons import Surrogate


def tiny_network(sizes=(3, 2, 2), seed=0, threshold=0.6, surrogate=Surrogate.TRIANGLE):
    return SpikingMLP(
        list(sizes), beta=0.8, kappa=0.7, threshold=threshold, surrogate=surrogate,
        generator=torch.Generator().manual_seed(seed),
    )


def consolidate_hidden(consolidator, network, tag_values):
    """Consolidate tags that are zero except the first hidden layer's weights; return those weights."""
    tags = GlialTags(network)
    tags.weight[0].copy_(torch.tensor(tag_values, dtype=torch.float32))
    tags.wake_batches = 1
    consolidator.consolidate(tags)
    return network.hidden[0].weight.detach().clone()


def test_rprop_steps_grow_shrink_and_pause_after_flip():
    network = tiny_network()
    start = network.hidden[0].weight.detach().clone()
    consolidator = Consolidator(network, "rprop", lr=0.1)

    # column 0 keeps its sign, column 1 flips at the second sleep, column 2 stays zero
    sequence = [
        [[1.0, 2.0, 0.0], [-3.0, 1.0, 0.0]],
        [[5.0, -2.0, 0.0], [-1.0, 1.0, 0.0]],
        [[0.5, -1.0, 0.0], [-2.0, 1.0, 0.0]],
        [[2.0, -4.0, 0.0], [1.0, 1.0, 0.0]],
    ]
    weights = [consolidate_hidden(consolidator, network, tags) for tags in sequence]
    moves = [(after - before) for before, after in zip([start, *weights[:-1]], weights)]

    # weight [0, 0]: the sign repeats, so the step grows x1.2 per sleep: 0.1, 0.12, 0.144, 0.1728
    assert [float(m[0, 0]) for m in moves] == pytest.approx([-0.1, -0.12, -0.144, -0.1728], rel=1e-5)
    # weight [0, 1]: +, then a flip: the step halves to 0.05 and the weight waits one sleep,
    # then moves 0.05 (no sign history after the pause), then 0.06 as the sign repeats
    assert [float(m[0, 1]) for m in moves] == pytest.approx([-0.1, 0.0, 0.05, 0.06], rel=1e-5)
    # weight [1, 0]: repeats three times, then flips at the fourth sleep: pause
    assert [float(m[1, 0]) for m in moves] == pytest.approx([0.1, 0.12, 0.144, 0.0], rel=1e-5)
    # a zero tag never moves its weight
    assert all(float(m[0, 2]) == 0.0 for m in moves)
    assert all(float(m[1, 2]) == 0.0 for m in moves)


def test_rprop_step_clipped_to_fifty_lr():
    network = tiny_network()
    consolidator = Consolidator(network, "rprop", lr=0.01)
    moves = []
    for _ in range(30):
        before = network.hidden[0].weight.detach().clone()
        after = consolidate_hidden(consolidator, network, [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        moves.append(float(before[0, 0] - after[0, 0]))

    # 0.01 * 1.2^n exceeds 50 * 0.01 = 0.5 from n = 22 on (1.2^22 = 55.2)
    assert moves[21] == pytest.approx(0.01 * 1.2**21, rel=1e-4)
    assert moves[22] == pytest.approx(0.5, rel=1e-5)
    assert moves[29] == pytest.approx(0.5, rel=1e-5)


def test_rprop_step_clipped_to_lr_over_thousand():
    network = tiny_network()
    consolidator = Consolidator(network, "rprop", lr=0.1)
    moves = []
    for sleep in range(40):
        sign = 1.0 if sleep % 2 == 0 else -1.0
        before = network.hidden[0].weight.detach().clone()
        after = consolidate_hidden(consolidator, network, [[sign, 0.0, 0.0], [0.0, 0.0, 0.0]])
        moves.append(abs(float(after[0, 0] - before[0, 0])))

    # alternating signs: a flip on every odd sleep halves the step and pauses; even sleeps move
    assert moves[0] == pytest.approx(0.1, rel=1e-5)
    assert moves[2] == pytest.approx(0.05, rel=1e-5)
    assert moves[18] == pytest.approx(0.1 / 2**9, rel=1e-4)
    # 0.1 / 2^10 = 9.8e-5 is below 0.1 / 1000, so the step stops at 1e-4
    assert moves[20] == pytest.approx(1e-4, rel=1e-3)
    assert moves[38] == pytest.approx(1e-4, rel=1e-3)
    assert all(move == 0.0 for move in moves[1::2])


def test_rprop_moves_follow_learning_rate_schedule():
    network = tiny_network()
    consolidator = Consolidator(network, "rprop", lr=0.1)
    tags = [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]
    consolidate_hidden(consolidator, network, tags)

    # a schedule that has lowered lr to a quarter scales the move, not the adapted step
    for group in consolidator.optimizer.param_groups:
        group["lr"] = 0.025
    before = network.hidden[0].weight.detach().clone()
    after = consolidate_hidden(consolidator, network, tags)
    assert float(after[0, 0] - before[0, 0]) == pytest.approx(-0.12 / 4, rel=1e-5)
    assert float(after[0, 1] - before[0, 1]) == pytest.approx(0.12 / 4, rel=1e-5)
    assert consolidator.optimizer.param_groups[0]["lr"] == 0.025

    # back at the full rate, the step has kept growing: 0.1 * 1.2^2
    for group in consolidator.optimizer.param_groups:
        group["lr"] = 0.1
    before = network.hidden[0].weight.detach().clone()
    after = consolidate_hidden(consolidator, network, tags)
    assert float(after[0, 0] - before[0, 0]) == pytest.approx(-0.144, rel=1e-5)


def test_sign_moves_nonzero_tags_by_exactly_lr():
    network = tiny_network(sizes=(4, 3, 2))
    consolidator = Consolidator(network, "sign", lr=0.01)
    tags = GlialTags(network)
    tags.weight[0].copy_(torch.tensor([[3.0, -1e-6, 0.0, 7.0], [0.0, 0.0, -2.0, 1e3], [5.0, 0.0, 0.0, -0.1]]))
    tags.weight[1].copy_(torch.tensor([[0.0, 1.0, 0.0], [-4.0, 0.0, 0.0]]))
    tags.bias[0].copy_(torch.tensor([0.0, 2.0, -2.0]))
    tags.wake_batches = 1
    expected_tags = [t.clone() for t in (*tags.weight, *tags.bias)]
    parameters = [network.hidden[0].weight, network.readout.weight, network.hidden[0].bias]
    before = [p.detach().clone() for p in parameters]

    consolidator.consolidate(tags)

    for tag, old, new in zip(expected_tags, before, [p.detach() for p in parameters]):
        change = new - old
        assert torch.equal(change[tag == 0], torch.zeros_like(change[tag == 0]))
        nonzero = tag != 0
        assert torch.allclose(change[nonzero], -0.01 * torch.sign(tag[nonzero]), rtol=0, atol=1e-7)
        assert (change[nonzero].abs() > 0.0099).all()
    assert tags.wake_batches == 0
    assert all(float(t.abs().sum()) == 0.0 for t in (*tags.weight, *tags.bias))


def test_sign_counts_one_write_per_nonzero_tag():
    network = tiny_network(sizes=(4, 3, 2))
    consolidator = Consolidator(network, "sign", lr=0.01)
    tags = GlialTags(network)
    tags.weight[0][0, 0] = 1.0
    tags.weight[0][2, 3] = -1.0
    tags.weight[1][1, 2] = 0.5
    tags.bias[1][0] = -3.0
    tags.wake_batches = 1
    assert consolidator.consolidate(tags) == 4


def test_pruned_synapses_get_no_write():
    network = tiny_network(sizes=(4, 3, 2))
    with torch.no_grad():
        network.hidden[0].mask[0, :2] = 0.0
        network.hidden[0].weight.mul_(network.hidden[0].mask)
    consolidator = Consolidator(network, "sign", lr=0.01)
    tags = GlialTags(network)
    tags.weight[0].fill_(1.0)
    tags.wake_batches = 1
    assert consolidator.consolidate(tags) == 10
    assert torch.equal(network.hidden[0].weight[0, :2], torch.zeros(2))


def saturating_network(seed=0):
    """A network in which every synapse gets a nonzero tag from every minibatch.

    Positive weights and inputs make every hidden neuron spike, so every readout trace is
    positive, and the fast-sigmoid pseudo-derivative is positive everywhere.
    """
    network = tiny_network(sizes=(5, 4, 3), seed=seed, threshold=0.3, surrogate=Surrogate.FAST_SIGMOID)
    with torch.no_grad():
        network.hidden[0].weight.abs_()
        network.hidden[0].mask[1, 2] = 0.0
        network.hidden[0].mask[3, 0] = 0.0
        network.hidden[0].weight.mul_(network.hidden[0].mask)
    return network


@pytest.mark.parametrize("consolidation", ["sign", "rprop", "adam", "sgd"])
@pytest.mark.parametrize("sleep_interval, sleeps", [(1, 10), (10, 1)])
def test_write_counts_over_ten_batches(consolidation, sleep_interval, sleeps):
    network = saturating_network()
    rule = GlialRule(network, feedback="exact", consolidation=consolidation, lr=0.01, sleep_interval=sleep_interval)
    generator = torch.Generator().manual_seed(1)
    # present synapses: 5 * 4 - 2 pruned, 4 * 3 readout; biases: 4 + 3
    writes_per_sleep = (20 - 2) + 12 + 4 + 3

    writes = []
    for _ in range(10):
        x = DirectCurrent(6)(0.5 + 0.5 * torch.rand(8, 5, generator=generator))
        labels = torch.randint(0, 3, (8,), generator=generator)
        before = [p.detach().clone() for p in network.parameters()]
        result = rule.train_batch(x, labels)
        changed = sum(int((p.detach() != old).sum()) for p, old in zip(network.parameters(), before))
        assert result.weight_writes == changed
        writes.append(result.weight_writes)

    assert sum(1 for w in writes if w) == sleeps
    if consolidation == "rprop" and sleep_interval == 1:
        # after a sign flip rprop pauses that weight for one sleep, so later sleeps write fewer
        assert writes[0] == writes_per_sleep
        assert sum(writes) < sleeps * writes_per_sleep
    elif consolidation == "sgd":
        # w - lr * a rounds back to w when lr * a is below half a float32 step of w: no write
        assert sum(writes) <= sleeps * writes_per_sleep
    else:
        assert sum(writes) == sleeps * writes_per_sleep
    if sleep_interval == 10:
        assert writes[:9] == [0] * 9


def test_final_sleep_consolidates_leftover_tags():
    network = saturating_network()
    rule = GlialRule(network, feedback="exact", consolidation="sign", lr=0.01, sleep_interval=10)
    x = DirectCurrent(6)(0.5 + 0.5 * torch.rand(8, 5, generator=torch.Generator().manual_seed(2)))
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    writes = [rule.train_batch(x, labels).weight_writes for _ in range(3)]
    assert writes == [0, 0, 0]
    assert rule.sleep() == 37
    assert rule.sleep() == 0


def test_unknown_consolidation_rule_is_rejected():
    with pytest.raises(ValueError, match="'momentum' is not a valid ConsolidationRule"):
        Consolidator(tiny_network(), "momentum", lr=0.01)
    assert {rule.value for rule in ConsolidationRule} == {"sgd", "adam", "sign", "rprop"}
