"""Resume is exact: a run stopped anywhere and resumed ends with the same tensors as one left alone."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from microglia.cli import main
from microglia.data import Dataset, Split
from microglia.errors import CheckpointError, TrainingDivergedError, TrainingInterrupted
from microglia.glia import GlialRule
from microglia.network import SpikingMLP
from microglia.training import TrainConfig, Trainer
from microglia.training.checkpoint import list_checkpoints, read_checkpoint, save_checkpoint
from microglia.training.runs import read_history
from test_checkpoint import assert_same_state

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = dict(hidden=(20,), epochs=2, steps=6, batch_size=64, lr=3e-3, checkpoint_every=5)
"""digits in 21 minibatches per epoch: two epochs take about a second."""
TIMING_KEYS = ("samples_per_second", "epoch_seconds")


def without_timing(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in record.items() if key not in TIMING_KEYS} for record in history]


def final_state(run_dir: Path) -> dict:
    """Return the newest checkpoint's state with its timing fields removed."""
    state = read_checkpoint(list_checkpoints(run_dir)[0])
    state["history"] = without_timing(state["history"])
    state["progress"]["seconds"] = 0.0
    state["train_seconds"] = 0.0
    return state


def assert_runs_identical(left: Path, right: Path) -> None:
    """Compare every tensor of the final weights and the final checkpoint, and the metrics."""
    left_weights, right_weights = load_file(left / "weights.safetensors"), load_file(right / "weights.safetensors")
    assert list(left_weights) == list(right_weights)
    for name in left_weights:
        assert torch.equal(left_weights[name], right_weights[name]), name
    assert_same_state(final_state(left), final_state(right))
    assert without_timing(read_history(left)) == without_timing(read_history(right))
    left_summary = json.loads((left / "summary.json").read_text())
    right_summary = json.loads((right / "summary.json").read_text())
    assert left_summary["test"] == right_summary["test"]


def run_alone(config: TrainConfig, dataset: Dataset) -> Path:
    result = Trainer(config, dataset=dataset, progress=False).run()
    return result.run_dir


def interrupt_after(trainer: Trainer, batches: int, signal_number: int = signal.SIGINT) -> None:
    """Make the trainer's process receive `signal_number` during its `batches`-th minibatch."""
    original = trainer.rule.train_batch
    calls = 0

    def train_batch(x, labels):
        nonlocal calls
        calls += 1
        if calls == batches:
            signal.raise_signal(signal_number)
        return original(x, labels)

    trainer.rule.train_batch = train_batch


def signal_in_every_glial_run(monkeypatch, batches: int, signal_number: int) -> None:
    """Make the process receive `signal_number` in the `batches`-th glial minibatch, counted over all runs.

    For runs that a command builds itself, where `interrupt_after` cannot reach the trainer.
    """
    original = GlialRule.train_batch
    calls = 0

    def train_batch(self, x, labels):
        nonlocal calls
        calls += 1
        if calls == batches:
            signal.raise_signal(signal_number)
        return original(self, x, labels)

    monkeypatch.setattr(GlialRule, "train_batch", train_batch)


@pytest.mark.parametrize(
    "settings",
    [
        dict(),
        dict(consolidation="rprop", sleep_interval=3, encoding="rate", feedback="random"),
        dict(rule="bptt", schedule="constant", patience=1, epochs=3),
    ],
    ids=["adam", "rprop-rate-sleep3", "bptt"],
)
def test_interrupted_runs_resume_exactly(tmp_path, digits, settings):
    reference = run_alone(TrainConfig(**TINY | settings, out=str(tmp_path / "alone")), digits)

    config = TrainConfig(**TINY | settings, out=str(tmp_path / "stopped"))
    stops = [7, 14, 1]  # mid-epoch, the last batch of epoch 1, then the first batch after resuming
    trainer = Trainer(config, dataset=digits, progress=False)
    for stop in stops:
        interrupt_after(trainer, stop)
        with pytest.raises(TrainingInterrupted) as raised:
            trainer.run()
        assert raised.value.signal_number == signal.SIGINT
        trainer = Trainer.resume(tmp_path / "stopped", dataset=digits, progress=False)
    trainer.run()

    assert_runs_identical(reference, tmp_path / "stopped")


def test_interrupt_message_and_checkpoint(tmp_path, digits):
    trainer = Trainer(TrainConfig(**TINY, out=str(tmp_path / "run")), dataset=digits, progress=False)
    interrupt_after(trainer, 8, signal.SIGTERM)

    with pytest.raises(TrainingInterrupted) as raised:
        trainer.run()

    run_dir = tmp_path / "run"
    assert str(raised.value) == (
        f"stopped by SIGTERM at epoch 1, batch 8; checkpoint saved in {run_dir / 'checkpoints'}/"
        f"batch-000000008.safetensors; continue with: microglia train --resume {run_dir}"
    )
    assert [path.name for path in list_checkpoints(run_dir)] == [
        "batch-000000008.safetensors",
        "batch-000000005.safetensors",
    ]
    state = read_checkpoint(list_checkpoints(run_dir)[0])
    assert state["progress"]["epoch"] == 1
    assert state["progress"]["batch"] == 8
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the previous SIGTERM handler was not restored"


def test_epoch_length_not_multiple_of_interval(tmp_path, digits):
    # 21 batches per epoch and a checkpoint every 5: epoch ends and intervals interleave
    run_alone(TrainConfig(**TINY, out=str(tmp_path / "run")), digits)

    names = [path.name for path in list_checkpoints(tmp_path / "run")]

    assert names == ["batch-000000042.safetensors", "batch-000000040.safetensors"]


def test_resume_without_checkpoint_starts_over(tmp_path, digits):
    reference = run_alone(TrainConfig(**TINY, out=str(tmp_path / "alone")), digits)
    run_dir = tmp_path / "early"
    run_dir.mkdir()
    TrainConfig(**TINY).write_toml(run_dir / "config.toml")

    Trainer.resume(run_dir, dataset=digits, progress=False).run()

    assert_runs_identical(reference, run_dir)


def test_resume_skips_damaged_newest_checkpoint(tmp_path, digits):
    reference = run_alone(TrainConfig(**TINY, out=str(tmp_path / "alone")), digits)
    trainer = Trainer(TrainConfig(**TINY, out=str(tmp_path / "run")), dataset=digits, progress=False)
    interrupt_after(trainer, 12)
    with pytest.raises(TrainingInterrupted):
        trainer.run()
    newest = list_checkpoints(tmp_path / "run")[0]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    Trainer.resume(tmp_path / "run", dataset=digits, progress=False).run()

    assert_runs_identical(reference, tmp_path / "run")


def test_resume_rewrites_metrics_past_checkpoint(tmp_path, digits):
    trainer = Trainer(TrainConfig(**TINY, out=str(tmp_path / "run")), dataset=digits, progress=False)
    interrupt_after(trainer, 3)
    with pytest.raises(TrainingInterrupted):
        trainer.run()
    # a line written after the checkpoint, by a process killed before its next checkpoint
    with open(tmp_path / "run" / "metrics.jsonl", "a", encoding="utf-8") as file:
        file.write('{"epoch": 1, "train_loss": 9.0}\n{"epoch": 2, "tra')

    result = Trainer.resume(tmp_path / "run", dataset=digits, progress=False).run()

    assert [record["epoch"] for record in read_history(tmp_path / "run")] == [1, 2]
    assert read_history(tmp_path / "run")[0]["train_loss"] == result.history[0]["train_loss"] != 9.0


def test_resume_rejects_checkpoint_of_other_network(tmp_path, digits):
    trainer = Trainer(TrainConfig(**TINY, out=str(tmp_path / "run")), dataset=digits, progress=False)
    interrupt_after(trainer, 2)
    with pytest.raises(TrainingInterrupted):
        trainer.run()
    for path in list_checkpoints(tmp_path / "run"):
        path.unlink()
    other = SpikingMLP([64, 30, 10])
    save_checkpoint(tmp_path / "run", 2, {"network": dict(other.state_dict())})

    with pytest.raises(CheckpointError) as raised:
        Trainer.resume(tmp_path / "run", dataset=digits, progress=False)

    assert "does not fit the network 64-20-10 of this run: hidden.0.weight has shape [30, 64], expected [20, 64]" in str(
        raised.value
    )


def test_resume_of_missing_run(tmp_path):
    with pytest.raises(CheckpointError) as raised:
        Trainer.resume(tmp_path / "nothing")

    assert str(raised.value) == f"cannot resume {tmp_path / 'nothing'}: it contains no run (config.toml not found)"


def test_resume_of_finished_run(tmp_path, digits):
    run_dir = run_alone(TrainConfig(**TINY | {"epochs": 1}, out=str(tmp_path / "run")), digits)

    with pytest.raises(CheckpointError) as raised:
        Trainer.resume(run_dir, dataset=digits)

    assert str(raised.value) == f"cannot resume {run_dir}: the run has finished (summary.json exists)"


def test_resume_rejects_changed_settings(tmp_path, capsys):
    status = main(["train", "--resume", str(tmp_path), "--lr", "0.1", "--epochs", "3"])

    assert status == 2
    assert capsys.readouterr().err == (
        "error: --resume continues a run with its own config.toml and accepts only --data-dir, --threads "
        "and --quiet; remove --epochs, --lr\n"
    )


def _poisoned(dataset: Dataset, sample: int) -> Dataset:
    images = dataset.train.images.clone()
    images[sample, 3] = float("nan")
    return dataclasses.replace(dataset, train=Split(images, dataset.train.labels))


def test_divergence_keeps_last_good_checkpoint(tmp_path, digits):
    config = TrainConfig(**TINY | {"checkpoint_every": 1}, out=str(tmp_path / "run"))
    trainer = Trainer(config, dataset=_poisoned(digits, 500), progress=False)
    order = torch.randperm(len(digits.train), generator=torch.Generator().set_state(trainer.generator.get_state()))
    diverging_batch = int((order == 500).nonzero()) // config.batch_size

    with pytest.raises(TrainingDivergedError) as raised:
        trainer.run()

    newest = list_checkpoints(tmp_path / "run")[0]
    assert newest.name == f"batch-{diverging_batch:09d}.safetensors"
    assert "start a new run with a smaller --lr (now " in str(raised.value)
    assert str(raised.value).endswith(f"; the last good checkpoint is kept for microglia evaluate --weights: {newest}")
    state = read_checkpoint(newest)
    for name, tensor in state["network"].items():
        assert torch.isfinite(tensor).all(), name


def test_cli_sigterm_exit_status(tmp_path, monkeypatch, capsys):
    signal_in_every_glial_run(monkeypatch, 4, signal.SIGTERM)
    options = ["--hidden", "20", "--epochs", "1", "--steps", "6", "--batch-size", "64", "--quiet"]

    status = main(["train", *options, "--out", str(tmp_path / "run")])

    assert status == 128 + signal.SIGTERM
    assert "stopped by SIGTERM at epoch 1, batch 4" in capsys.readouterr().err
    assert (tmp_path / "run" / "checkpoints" / "batch-000000004.safetensors").is_file()


def _cli(*arguments: str) -> subprocess.Popen:
    environment = os.environ | {"PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [sys.executable, "-m", "microglia.cli", *arguments],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_then_resume_matches(tmp_path, digits):
    # the same thread count on both sides: it decides the order of floating-point sums
    settings = TINY | {"checkpoint_every": 3, "epochs": 3, "threads": 1}
    reference = run_alone(TrainConfig(**settings, out=str(tmp_path / "alone")), digits)
    run_dir = tmp_path / "killed"
    options = ["--hidden", "20", "--epochs", "3", "--steps", "6", "--batch-size", "64", "--lr", "3e-3", "--threads", "1"]

    process = _cli("train", *options, "--checkpoint-every", "3", "--out", str(run_dir), "--quiet")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        checkpoints = list_checkpoints(run_dir)
        if checkpoints and checkpoints[0].name >= "batch-000000012":
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run finished before it could be killed: " + process.communicate()[1]
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert not (run_dir / "summary.json").exists()

    resumed = _cli("train", "--resume", str(run_dir), "--quiet")
    stdout, stderr = resumed.communicate(timeout=300)

    assert resumed.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert_runs_identical(reference, run_dir)


def test_resume_other_threads_warns(tmp_path, digits, caplog):
    trainer = Trainer(TrainConfig(**TINY | {"threads": 1}, out=str(tmp_path / "run")), dataset=digits, progress=False)
    interrupt_after(trainer, 3)
    with pytest.raises(TrainingInterrupted):
        trainer.run()

    with caplog.at_level("WARNING"):
        Trainer.resume(tmp_path / "run", dataset=digits, progress=False, threads=2)

    assert "resuming with 2 threads where the run used 1" in caplog.text
