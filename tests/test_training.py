"""Whole training runs on real digits, the run directory, divergence and configuration errors."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from microglia.data import Dataset, Split, load_dataset
from microglia.encoding import make_encoder
from microglia.errors import ConfigError, TrainingDivergedError
from microglia.network import SpikingMLP
from microglia.training import TrainConfig, Trainer, train
from microglia.training.evaluate import evaluate

FAST = dict(hidden=(100,), epochs=6, batch_size=32, steps=8, lr=3e-3)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize(
    "settings, floor",
    [
        (dict(rule="glia", feedback="sign"), 0.93),
        (dict(rule="glia", feedback="exact"), 0.93),
        (dict(rule="glia", feedback="random"), 0.90),
        (dict(rule="glia", feedback="direct"), 0.90),
        (dict(rule="bptt"), 0.93),
    ],
)
def test_short_run_beats_accuracy_floor(tmp_path, digits, settings, floor):
    config = TrainConfig(**FAST, **settings, out=str(tmp_path / "run"))
    result = Trainer(config, dataset=digits, progress=False).run()
    assert result.test.accuracy >= floor
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_run_directory_contents(tmp_path, digits):
    config = TrainConfig(**FAST | {"epochs": 2}, out=str(tmp_path / "run"))
    result = Trainer(config, dataset=digits, progress=False).run()
    run_dir = tmp_path / "run"

    assert TrainConfig.from_toml(run_dir / "config.toml") == config.replace(out=None)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    for key in ("val_accuracy", "val_loss", "firing_rate", "spikes_per_sample", "samples_per_second"):
        assert lines[-1][key] is not None, key
    assert len(lines[-1]["firing_rate"]) == 1

    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["test_accuracy"] == pytest.approx(result.test.accuracy)
    assert summary["best_epoch"] == result.best_epoch

    weights = load_file(run_dir / "weights.safetensors")
    assert weights["hidden.0.weight"].shape == (100, 64)
    assert weights["readout.weight"].shape == (10, 100)
    assert not list(run_dir.glob("*.tmp")), "temporary files left behind"


def test_existing_run_directory_is_not_overwritten(tmp_path, digits):
    config = TrainConfig(**FAST | {"epochs": 1}, out=str(tmp_path / "run"))
    Trainer(config, dataset=digits, progress=False).run()
    before = (tmp_path / "run" / "metrics.jsonl").read_bytes()
    with pytest.raises(ConfigError, match="already contains a finished run"):
        Trainer(config, dataset=digits, progress=False).run()
    assert (tmp_path / "run" / "metrics.jsonl").read_bytes() == before


def test_same_seed_gives_identical_metrics(tmp_path, digits):
    runs = []
    for name in ("a", "b"):
        config = TrainConfig(**FAST | {"epochs": 2}, out=str(tmp_path / name))
        Trainer(config, dataset=digits, progress=False).run()
        lines = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        for line in lines:
            del line["samples_per_second"], line["epoch_seconds"]
        runs.append(lines)
    assert runs[0] == runs[1]


def _poisoned(dataset: Dataset) -> Dataset:
    images = dataset.train.images.clone()
    images[5, 3] = float("nan")
    return dataclasses.replace(dataset, train=Split(images, dataset.train.labels))


@pytest.mark.parametrize("rule", ["glia", "bptt"])
def test_nan_stops_training(tmp_path, digits, rule):
    # a NaN current never crosses threshold, so the loss stays finite but the first layer's update does not
    config = TrainConfig(**FAST | {"batch_size": 2000}, rule=rule, out=str(tmp_path / "run"))
    message = r"hidden.0.weight contains NaN or infinite values after epoch 1, batch 0; start a new run with a smaller --lr"
    with pytest.raises(TrainingDivergedError, match=message):
        Trainer(config, dataset=_poisoned(digits), progress=False).run()


def test_exploding_weights_stop_training(tmp_path, digits):
    config = TrainConfig(**FAST | {"lr": 1e38}, consolidation="sgd", schedule="constant", out=str(tmp_path / "run"))
    with pytest.raises(TrainingDivergedError, match="diverged"):
        Trainer(config, dataset=digits, progress=False).run()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"steps": 0}, "steps: expected an integer >= 1, got 0"),
        ({"burn_in": 10, "steps": 10}, "burn_in: expected fewer than steps (10), got 10"),
        ({"lr": -1.0}, "lr: expected a finite number > 0, got -1.0"),
        ({"lr": float("nan")}, "lr: expected a finite number > 0, got nan"),
        ({"beta": 1.5}, "beta: expected a number in (0.0, 1.0], got 1.5"),
        ({"feedback": "mirror"}, "feedback: expected one of exact, sign, random, direct, got 'mirror'"),
        ({"rule": "hebb"}, "rule: expected one of glia, bptt, perturbation, ann, got 'hebb'"),
        ({"hidden": (100, 0)}, "hidden: expected one or more positive layer widths, got (100, 0)"),
        ({"lr": 1e300}, "lr: expected a number that fits float32 (at most 3.403e+38), got 1e+300"),
        ({"validation_fraction": 0.9}, "validation_fraction: expected a number in [0.0, 0.5], got 0.9"),
        ({"epochs": True}, "epochs: expected an integer >= 1, got True"),
    ],
)
def test_invalid_config_names_field_and_value(settings, message):
    with pytest.raises(ConfigError) as error:
        TrainConfig.from_dict(settings)
    assert str(error.value) == message


def test_unknown_config_key_is_rejected(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('dataset = "digits"\nlearning_rate = 0.1\n')
    with pytest.raises(ConfigError, match="unknown setting\\(s\\): learning_rate"):
        TrainConfig.from_toml(path)


def test_config_toml_overrides(tmp_path):
    path = tmp_path / "config.toml"
    TrainConfig(hidden=(50, 40), lr=0.01).write_toml(path)
    config = TrainConfig.from_toml(path, lr=0.02)
    assert config.hidden == (50, 40)
    assert config.lr == 0.02


def test_train_function_returns_result(tmp_path, digits, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = train(TrainConfig(**FAST | {"epochs": 1}), progress=False)
    assert result.run_dir.parent.name == "runs"
    assert (tmp_path / result.run_dir / "summary.json").exists()
    assert torch.is_tensor(result.test.accuracy) is False


@pytest.mark.parametrize("encoding, expected", [("latency", 3.0), ("direct", 0.0)])
def test_synops_count_input_spikes(encoding, expected):
    network = SpikingMLP([3, 2, 2])
    with torch.no_grad():
        for layer in network.synaptic_layers:
            layer.weight.zero_()
            layer.bias.zero_()
        network.synaptic_layers[0].mask[1, 0] = 0.0
    # latency code over 5 steps: 1.0 spikes at step 0, 0.0 never, 0.5 at step 2
    images = torch.tensor([[1.0, 0.0, 0.5]])

    result = evaluate(network, images, torch.tensor([0]), make_encoder(encoding, 5))

    # hidden neurons get no current and stay silent; input 0 reaches 1 synapse, input 2 reaches 2
    assert result.spikes_per_sample == 0.0
    assert result.synops_per_sample == expected


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"sleep_interval": 100},
            "sleep interval 100 is longer than an epoch (41 minibatches), so the weights change only every 2.4 epochs",
        ),
        (
            {"density": 0.1, "initial_density": 1.0},
            "the run has 82 sleeps, fewer than the 100 of one structural step, so the density stays at 1 and never "
            "reaches 0.1",
        ),
    ],
)
def test_stalling_glial_settings_warn(tmp_path, digits, caplog, settings, message):
    config = TrainConfig(hidden=(10,), epochs=2, out=str(tmp_path / "run"), **settings)

    with caplog.at_level("WARNING"):
        Trainer(config, dataset=digits, progress=False)

    assert message in caplog.text
