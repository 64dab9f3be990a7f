"""Tests of the checkpoint format: round trips, damage detection, retention, weights loading."""

from __future__ import annotations

import json
import logging
import math
import os
import stat

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load, save, save_file

from microglia.baselines import BPTTRule
from microglia.errors import CheckpointError
from microglia.glia import GlialRule
from microglia.network import SpikingMLP
from microglia.training.checkpoint import (
    CHECKPOINT_FORMAT,
    _digest,
    decode_checkpoint,
    encode_checkpoint,
    list_checkpoints,
    load_newest_checkpoint,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)
from microglia.training.files import atomic_save_tensors, sort_metadata


def nested_state() -> dict:
    return {
        "weights": torch.arange(6, dtype=torch.float32).view(2, 3),
        "optimizer": {"state": {0: {"step": torch.tensor(3.0)}, 1: {}}, "param_groups": [{"betas": (0.9, 0.999)}]},
        "generator": torch.Generator().manual_seed(5).get_state(),
        "numbers": [1, 2.5, float("inf"), None, True, "text"],
        "empty": torch.zeros(0, 4),
        "order": torch.randperm(7, generator=torch.Generator().manual_seed(1)),
    }


def assert_same_state(left, right) -> None:
    """Assert two nested states are equal, tensors bit for bit, with the same container types."""
    assert type(left) is type(right)
    if isinstance(left, torch.Tensor):
        assert left.dtype == right.dtype
        assert left.shape == right.shape
        assert torch.equal(left, right)
    elif isinstance(left, dict):
        assert list(left) == list(right)
        for key in left:
            assert_same_state(left[key], right[key])
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right)
        for a, b in zip(left, right):
            assert_same_state(a, b)
    elif isinstance(left, float) and math.isnan(left):
        assert math.isnan(right)
    else:
        assert left == right


def test_checkpoint_round_trip_keeps_types(tmp_path):
    state = nested_state()

    path = save_checkpoint(tmp_path, 12, state)
    restored = read_checkpoint(path)

    assert path.name == "batch-000000012.safetensors"
    assert_same_state(state, restored)
    assert isinstance(restored["optimizer"]["param_groups"][0]["betas"], tuple)
    assert list(restored["optimizer"]["state"]) == [0, 1]


def test_checkpoint_rejects_unsupported_values(tmp_path):
    with pytest.raises(TypeError, match="checkpoint state at values/0 has unsupported type object"):
        encode_checkpoint({"values": [object()]}, CHECKPOINT_FORMAT)


def test_checkpoint_keeps_newest_two(tmp_path):
    for batches in (0, 5, 10, 15):
        save_checkpoint(tmp_path, batches, {"batches": batches})

    names = [path.name for path in list_checkpoints(tmp_path)]

    assert names == ["batch-000000015.safetensors", "batch-000000010.safetensors"]


def test_truncated_checkpoint_is_rejected(tmp_path):
    path = save_checkpoint(tmp_path, 1, nested_state())
    path.write_bytes(path.read_bytes()[:-10])

    with pytest.raises(CheckpointError) as raised:
        read_checkpoint(path)

    assert str(raised.value).startswith(f"{path} is not a valid safetensors file")
    assert "truncated" in str(raised.value)


def test_flipped_tensor_byte_is_detected(tmp_path):
    path = save_checkpoint(tmp_path, 1, nested_state())
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))

    with pytest.raises(CheckpointError) as raised:
        read_checkpoint(path)

    assert str(raised.value) == f"{path} is corrupted: its contents do not match the stored SHA-256 digest"


def test_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "checkpoints" / "batch-000000001.safetensors"
    path.parent.mkdir()
    path.write_text("just some notes\n")

    with pytest.raises(CheckpointError, match="is not a valid safetensors file"):
        read_checkpoint(path)


def test_pickle_file_is_not_loaded(tmp_path):
    # torch.save writes a pickle (zip) file; it must be rejected without being unpickled
    path = tmp_path / "weights.pt"
    torch.save({"hidden.0.weight": torch.zeros(2, 2)}, path)

    with pytest.raises(CheckpointError, match="is not a valid safetensors file"):
        load_weights(path, SpikingMLP([4, 3, 2]))


def test_other_safetensors_file_is_rejected(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"x": torch.zeros(2)}, path)

    with pytest.raises(CheckpointError) as raised:
        load_weights(path, SpikingMLP([4, 3, 2]))

    assert str(raised.value) == f"{path} is a safetensors file but contains no microglia weights (format None)"


def test_weights_of_another_shape_are_rejected(tmp_path):
    path = tmp_path / "weights.safetensors"
    other = SpikingMLP([4, 5, 2])
    atomic_save_tensors(path, other.state_dict(), metadata={"format": "microglia.SpikingMLP"})

    with pytest.raises(CheckpointError) as raised:
        load_weights(path, SpikingMLP([4, 3, 2]))

    assert str(raised.value) == (
        f"{path} does not fit the network 4-3-2 of this run: hidden.0.weight has shape [5, 4], "
        "expected [3, 4]; it was written for another network shape"
    )


def test_weights_with_other_layers_are_rejected(tmp_path):
    path = tmp_path / "weights.safetensors"
    atomic_save_tensors(path, SpikingMLP([4, 3, 3, 2]).state_dict(), metadata={"format": "microglia.SpikingMLP"})

    with pytest.raises(CheckpointError, match=r"missing nothing, unexpected \['hidden.1.bias'"):
        load_weights(path, SpikingMLP([4, 3, 2]))


def test_weights_load_from_checkpoint(tmp_path):
    source = SpikingMLP([4, 3, 2], generator=torch.Generator().manual_seed(3))
    path = save_checkpoint(tmp_path, 4, {"network": dict(source.state_dict())})
    target = SpikingMLP([4, 3, 2])

    load_weights(path, target)

    assert_same_state(dict(source.state_dict()), dict(target.state_dict()))


def test_damaged_newest_falls_back_with_warning(tmp_path, caplog):
    save_checkpoint(tmp_path, 3, {"batches": 3})
    newest = save_checkpoint(tmp_path, 6, {"batches": 6})
    newest.write_bytes(newest.read_bytes()[:50])

    with caplog.at_level(logging.WARNING):
        path, state = load_newest_checkpoint(tmp_path)

    assert path.name == "batch-000000003.safetensors"
    assert state == {"batches": 3}
    assert "skipping damaged checkpoint" in caplog.text
    assert "batch-000000006" in caplog.text


def test_no_readable_checkpoint_raises(tmp_path):
    path = save_checkpoint(tmp_path, 3, {"batches": 3})
    path.write_bytes(b"\x00" * 20)

    with pytest.raises(CheckpointError, match=r"no readable checkpoint in .*checkpoints: .*batch-000000003"):
        load_newest_checkpoint(tmp_path)


def test_leftover_temporary_files_are_removed(tmp_path):
    save_checkpoint(tmp_path, 3, {"batches": 3})
    leftover = tmp_path / "checkpoints" / ".batch-000000006.safetensors.abc.tmp"
    leftover.write_bytes(b"partial")

    load_newest_checkpoint(tmp_path)

    assert not leftover.exists()


def test_run_without_checkpoints_returns_none(tmp_path):
    assert load_newest_checkpoint(tmp_path) is None


@pytest.mark.parametrize("consolidation", ["adam", "rprop", "sgd", "sign"])
def test_glial_rule_state_round_trip(tmp_path, consolidation):
    torch.manual_seed(0)
    x = torch.rand(6, 5, 4)
    labels = torch.tensor([0, 1, 0, 1, 1])

    def build():
        network = SpikingMLP([4, 6, 2], generator=torch.Generator().manual_seed(0))
        rule = GlialRule(
            network, feedback="random", consolidation=consolidation, sleep_interval=2,
            generator=torch.Generator().manual_seed(1),
        )
        return network, rule

    network, rule = build()
    for _ in range(3):
        rule.train_batch(x, labels)
    path = save_checkpoint(tmp_path, 3, {"network": dict(network.state_dict()), "rule": rule.state_dict()})
    assert rule.tags.wake_batches == 1, "the checkpoint must hold unconsolidated tags"

    restored_network, restored_rule = build()
    state = read_checkpoint(path)
    restored_network.load_state_dict(state["network"])
    restored_rule.load_state_dict(state["rule"])
    for _ in range(3):
        rule.train_batch(x, labels)
        restored_rule.train_batch(x, labels)

    assert_same_state(dict(network.state_dict()), dict(restored_network.state_dict()))
    assert_same_state(rule.state_dict(), restored_rule.state_dict())


def test_bptt_rule_state_round_trip(tmp_path):
    x = torch.rand(6, 5, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1, 1])
    networks = [SpikingMLP([4, 6, 2], generator=torch.Generator().manual_seed(0)) for _ in range(2)]
    rules = [BPTTRule(network) for network in networks]
    rules[0].train_batch(x, labels)
    path = save_checkpoint(tmp_path, 1, {"network": dict(networks[0].state_dict()), "rule": rules[0].state_dict()})

    state = read_checkpoint(path)
    networks[1].load_state_dict(state["network"])
    rules[1].load_state_dict(state["rule"])
    for rule in rules:
        rule.train_batch(x, labels)

    assert_same_state(dict(networks[0].state_dict()), dict(networks[1].state_dict()))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_checkpoint_error(data):
    try:
        decode_checkpoint(data, "random.safetensors", CHECKPOINT_FORMAT)
    except CheckpointError:
        return
    pytest.fail("random bytes were accepted as a checkpoint")


VALID = encode_checkpoint(nested_state(), CHECKPOINT_FORMAT)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(0, len(VALID) - 1), flip=st.integers(1, 255), cut=st.booleans())
def test_damaged_checkpoint_bytes_raise_checkpoint_error(position, flip, cut):
    # a damaged checkpoint either fails with CheckpointError or, for a byte that
    # does not matter (such as JSON whitespace in the header), decodes to the same state
    if cut:
        data = VALID[:position]
    else:
        data = bytearray(VALID)
        data[position] ^= flip
        data = bytes(data)
    try:
        state = decode_checkpoint(data, "damaged.safetensors", CHECKPOINT_FORMAT)
    except CheckpointError:
        return
    assert_same_state(nested_state(), state)


@settings(max_examples=100, deadline=None)
@given(structure=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
))
def test_forged_structure_raises_checkpoint_error(structure):
    # metadata edited by hand, with a matching digest, must never decode into something unexpected
    valid = encode_checkpoint({"x": torch.zeros(1)}, CHECKPOINT_FORMAT)
    header_length = int.from_bytes(valid[:8], "little")
    header = json.loads(valid[8 : 8 + header_length])
    header["__metadata__"]["structure"] = json.dumps(structure)
    header["__metadata__"]["sha256"] = _digest(header["__metadata__"]["structure"], {"x": torch.zeros(1)})
    encoded = json.dumps(header).encode()
    data = len(encoded).to_bytes(8, "little") + encoded + valid[8 + header_length :]
    try:
        state = decode_checkpoint(data, "forged.safetensors", CHECKPOINT_FORMAT)
    except CheckpointError:
        return
    assert_plain(state)


def assert_plain(value) -> None:
    """Assert a decoded state holds only plain containers, scalars and tensors."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, (str, int))
            assert_plain(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            assert_plain(item)
    else:
        assert value is None or isinstance(value, (bool, int, float, str, torch.Tensor)), repr(value)


def test_saved_tensors_get_the_umask_mode(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_save_tensors(tmp_path / "weights.safetensors", {"w": torch.ones(3)}, metadata={"format": "x"})
    finally:
        os.umask(previous)

    assert stat.S_IMODE((tmp_path / "weights.safetensors").stat().st_mode) == 0o644


def test_metadata_keys_sorted_content_kept():
    tensors = {"b": torch.arange(3.0), "a": torch.ones(2, 2, dtype=torch.int64)}
    metadata = {"z": "1", "format": 'quoted "text"', "sizes": "[1, 2]"}

    data = sort_metadata(save(tensors, metadata=metadata))

    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    assert list(header["__metadata__"]) == ["format", "sizes", "z"]
    assert header["__metadata__"] == metadata
    loaded = load(data)
    assert torch.equal(loaded["a"], tensors["a"])
    assert torch.equal(loaded["b"], tensors["b"])


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("hidden.0.weight", float("nan"), "hidden.0.weight contains NaN or infinite values"),
        ("readout.bias", float("inf"), "readout.bias contains NaN or infinite values"),
        ("hidden.0.mask", 7.0, "synapse mask hidden.0.mask contains values other than 0 and 1"),
    ],
)
def test_weights_with_bad_values_are_rejected(tmp_path, name, value, message):
    tensors = SpikingMLP([6, 4, 3]).state_dict()
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = value
    path = tmp_path / "weights.safetensors"
    atomic_save_tensors(path, tensors, metadata={"format": "microglia.SpikingMLP"})

    with pytest.raises(CheckpointError) as raised:
        load_weights(path, SpikingMLP([6, 4, 3]))

    assert str(raised.value).startswith(f"{path}: {message}")
