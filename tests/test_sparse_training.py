"""Training runs with pruning, growth and homeostasis: metrics, saved masks, options and errors."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from microglia.cli import build_parser
from microglia.data import Split, load_dataset
from microglia.encoding import make_encoder
from microglia.errors import ConfigError
from microglia.training import TrainConfig, Trainer, evaluate
from microglia.training.trainer import EVALUATION_BATCH_SIZE, build_network, density_schedule

FAST = dict(hidden=(100,), epochs=3, batch_size=32, steps=8, lr=3e-3)
SPARSE = dict(density=0.2, initial_density=1.0, structure_interval=10, territory_size=25, target_rate=0.15)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def sparse_run(tmp_path_factory, digits):
    run_dir = tmp_path_factory.mktemp("sparse") / "run"
    config = TrainConfig(**FAST, **SPARSE, out=str(run_dir))
    return Trainer(config, dataset=digits, progress=False).run()


def test_sparse_run_reaches_final_density(sparse_run):
    lines = [json.loads(line) for line in (sparse_run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["density"] == pytest.approx([0.2, 0.2], abs=1e-6)
    assert lines[0]["density"][0] > lines[-1]["density"][0]
    for line in lines:
        assert len(line["pruned"]) == 2
        assert len(line["grown"]) == 2
        assert len(line["threshold_mean"]) == 1
        assert line["synops_per_sample"] > 0
        assert len(line["dead_fraction"]) == 1
        assert len(line["saturated_fraction"]) == 1
    # 64 x 100 hidden synapses from density 1.0 to 0.2: pruned minus grown is the difference
    assert sum(line["pruned"][0] - line["grown"][0] for line in lines) == 6400 - 1280
    assert sum(line["grown"][0] for line in lines) > 0
    assert sparse_run.test.accuracy >= 0.80


def test_sparse_run_summary_reports_synops(sparse_run):
    summary = json.loads((sparse_run.run_dir / "summary.json").read_text())
    assert summary["test_synops_per_sample"] == pytest.approx(sparse_run.test.synops_per_sample)
    assert summary["test_synops_per_sample"] > 0
    assert summary["density"] == pytest.approx([0.2, 0.2], abs=1e-6)


def test_saved_sparse_network_reproduces_test(sparse_run, digits):
    weights = load_file(sparse_run.run_dir / "weights.safetensors")
    assert float(weights["hidden.0.mask"].mean()) == pytest.approx(0.2, abs=1e-6)
    assert float(weights["readout.mask"].mean()) == pytest.approx(0.2, abs=1e-6)
    assert bool((weights["hidden.0.weight"][weights["hidden.0.mask"] == 0] == 0).all())

    config = sparse_run.config
    fresh = build_network(config, digits.n_features, digits.n_classes, torch.Generator().manual_seed(99))
    assert float(fresh.hidden[0].mask.mean()) == 1.0
    fresh.load_state_dict(weights)
    test = evaluate(
        fresh,
        digits.test.images,
        digits.test.labels,
        make_encoder(config.encoding, config.steps),
        burn_in=config.burn_in,
        batch_size=EVALUATION_BATCH_SIZE,
    )
    assert test.accuracy == sparse_run.test.accuracy
    assert test.synops_per_sample == pytest.approx(sparse_run.test.synops_per_sample)


def test_sparse_synops_below_dense(tmp_path, digits, sparse_run):
    dense = Trainer(TrainConfig(**FAST, out=str(tmp_path / "dense")), dataset=digits, progress=False).run()
    assert sparse_run.test.synops_per_sample < 0.5 * dense.test.synops_per_sample


def test_density_schedule_length():
    config = TrainConfig(epochs=4, sleep_interval=2, density=0.1, initial_density=0.9, structure_interval=10)
    schedule = density_schedule(config, batches_per_epoch=100)
    # 4 * 100 / 2 = 200 sleeps, 20 structural steps, the cosine over the first 75% of them
    assert schedule.decay_steps == 15
    assert schedule.initial == 0.9
    assert schedule.final == 0.1
    assert schedule.exchange_steps == 0
    assert density_schedule(TrainConfig(density=0.3), 100).is_constant

    decaying = density_schedule(config.replace(prune_schedule="cosine"), batches_per_epoch=100)
    assert decaying.exchange_steps == 20


def test_constant_density_starts_sparse(tmp_path, digits):
    config = TrainConfig(
        **FAST | {"epochs": 1}, density=0.3, regrowth="random", structure_interval=10, out=str(tmp_path / "run")
    )
    trainer = Trainer(config, dataset=digits, progress=False)
    assert [layer.density for layer in trainer.network.synaptic_layers] == pytest.approx([0.3, 0.3], abs=1e-6)
    result = trainer.run()
    assert result.history[0]["density"] == pytest.approx([0.3, 0.3], abs=1e-6)
    assert result.history[0]["pruned"][0] > 0


def test_cli_exposes_structure_options():
    args = build_parser().parse_args(
        [
            "train",
            "--density",
            "0.1",
            "--initial-density",
            "1.0",
            "--prune-fraction",
            "0.2",
            "--regrowth",
            "random",
            "--territory-size",
            "25",
            "--structure-interval",
            "40",
            "--target-rate",
            "0.1",
            "--homeostasis-rate",
            "0.5",
        ]
    )
    assert (args.density, args.initial_density, args.prune_fraction) == (0.1, 1.0, 0.2)
    assert (args.regrowth, args.territory_size, args.structure_interval) == ("random", 25, 40)
    assert (args.target_rate, args.homeostasis_rate) == (0.1, 0.5)
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "--density-decay" in help_text


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"density": 0.0}, "density: expected a number in (0.0, 1.0], got 0.0"),
        ({"density": 1.5}, "density: expected a number in (0.0, 1.0], got 1.5"),
        ({"initial_density": -0.1}, "initial_density: expected a number in (0.0, 1.0], got -0.1"),
        ({"prune_fraction": 1.2}, "prune_fraction: expected a number in [0.0, 1.0], got 1.2"),
        ({"territory_size": 0}, "territory_size: expected an integer >= 1, got 0"),
        ({"structure_interval": 0}, "structure_interval: expected an integer >= 1, got 0"),
        ({"regrowth": "magic"}, "regrowth: expected one of guided, random, got 'magic'"),
        ({"prune_schedule": "linear"}, "prune_schedule: expected one of constant, cosine, got 'linear'"),
        ({"target_rate": 1.0}, "target_rate: expected a rate below 1.0 (0 turns homeostasis off), got 1.0"),
        ({"target_rate": -0.1}, "target_rate: expected a number in [0.0, 1.0], got -0.1"),
        ({"homeostasis_rate": 0.0}, "homeostasis_rate: expected a finite number > 0, got 0.0"),
        ({"density_decay": 0.0}, "density_decay: expected a number in (0.0, 1.0], got 0.0"),
        (
            {"rule": "bptt", "density": 0.5},
            "density: pruning and growth are part of the glia rule; "
            "expected density 1.0 and no initial_density with rule bptt",
        ),
        (
            {"rule": "bptt", "target_rate": 0.1},
            "target_rate: homeostasis is part of the glia rule; expected 0 with rule bptt",
        ),
        (
            {"rule": "ann", "density": 0.5},
            "density: pruning and growth are part of the glia rule; "
            "expected density 1.0 and no initial_density with rule ann",
        ),
        (
            {"rule": "perturbation", "target_rate": 0.1},
            "target_rate: homeostasis is part of the glia rule; expected 0 with rule perturbation",
        ),
    ],
)
def test_invalid_structure_config(settings, message):
    with pytest.raises(ConfigError) as error:
        TrainConfig.from_dict(settings)
    assert str(error.value) == message


def test_mnist_sparse_short_run(tmp_path):
    root = os.environ.get("MICROGLIA_TEST_DATA")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("set MICROGLIA_TEST_DATA to a folder that contains mnist/")
    dataset = load_dataset("mnist", root, validation_fraction=0.1, seed=0)
    dataset = dataclasses.replace(
        dataset,
        train=Split(dataset.train.images[:6000], dataset.train.labels[:6000]),
        validation=Split(dataset.validation.images[:500], dataset.validation.labels[:500]),
        test=Split(dataset.test.images[:1000], dataset.test.labels[:1000]),
    )
    config = TrainConfig(
        dataset="mnist",
        hidden=(100,),
        epochs=2,
        batch_size=64,
        density=0.3,
        initial_density=1.0,
        structure_interval=10,
        out=str(tmp_path / "run"),
    )
    result = Trainer(config, dataset=dataset, progress=False).run()
    assert result.test.accuracy >= 0.85
    assert result.history[-1]["density"] == pytest.approx([0.3, 0.3], abs=1e-3)
