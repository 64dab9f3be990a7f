"""The command line: train, evaluate and report, and a clear error with exit status 2 for bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from microglia.cli import main
from microglia.data import download as download_module
from microglia.data import datasets as datasets_module
from microglia.network import SpikingMLP
from microglia.training.files import atomic_save_tensors

TINY = ["--hidden", "20", "--epochs", "2", "--steps", "6", "--batch-size", "64", "--lr", "3e-3", "--quiet"]
TIMING_KEYS = ("samples_per_second", "epoch_seconds")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch):
    monkeypatch.delenv("MICROGLIA_DATA", raising=False)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TINY, "--out", str(run_dir)]) == 0
    return run_dir


def error_of(capsys, arguments: list[str]) -> str:
    """Run the CLI, assert it failed with status 2 and no traceback, and return its stderr."""
    status = main(arguments)
    captured = capsys.readouterr()
    assert status == 2, captured.err
    assert "Traceback" not in captured.err
    return captured.err


def argparse_error(capsys, arguments: list[str]) -> str:
    """Run the CLI on arguments that argparse rejects; return its stderr."""
    with pytest.raises(SystemExit) as raised:
        main(arguments)
    assert raised.value.code == 2
    return capsys.readouterr().err


def metrics_without_timing(run_dir: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{key: value for key, value in line.items() if key not in TIMING_KEYS} for line in lines]


def test_config_file_repeats_run(finished_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    status = main(["train", "--config", str(finished_run / "config.toml"), "--quiet"])

    assert status == 0
    repeats = list((tmp_path / "runs").iterdir())
    assert len(repeats) == 1, "the repeat must go to a new directory, since config.toml holds no out"
    assert metrics_without_timing(repeats[0]) == metrics_without_timing(finished_run)
    original, repeated = load_file(finished_run / "weights.safetensors"), load_file(repeats[0] / "weights.safetensors")
    for name in original:
        assert torch.equal(original[name], repeated[name]), name
    assert "test accuracy" in capsys.readouterr().out


def test_config_file_without_out_gets_unique_directories(finished_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = str(finished_run / "config.toml")

    for _ in range(2):
        assert main(["train", "--config", config, "--epochs", "1", "--quiet"]) == 0

    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_evaluate_prints_metrics(finished_run, capsys):
    status = main(["evaluate", str(finished_run)])

    output = capsys.readouterr().out
    assert status == 0
    summary = json.loads((finished_run / "summary.json").read_text())
    evaluation = json.loads((finished_run / "evaluation.json").read_text())
    assert evaluation["accuracy"] == summary["test_accuracy"]
    assert evaluation["confusion"] == summary["test"]["confusion"]
    correct = round(summary["test_accuracy"] * 360)
    assert f"test accuracy {summary['test_accuracy']:.4f} ({correct}/360)" in output
    assert f"SynOps per sample {summary['test']['synops_per_sample']:.0f}" in output
    assert "confusion matrix" in output


def test_report_writes_figures_and_page(finished_run, capsys):
    status = main(["report", str(finished_run)])

    assert status == 0
    folder = finished_run / "report"
    page = (folder / "report.md").read_text()
    for name in ("learning_curves", "spike_raster", "firing_rates", "weights", "density"):
        data = (folder / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), name
        assert len(data) > 5000, name
        assert f"]({name}.png)" in page
    summary = json.loads((finished_run / "summary.json").read_text())
    assert f"| accuracy | {summary['test_accuracy']:.4f}" in page
    assert "| best epoch |" in page
    assert not list(folder.glob(".*.tmp"))


@pytest.fixture(scope="module")
def finished_ann_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("cli-ann") / "run"
    assert main(["train", *TINY, "--rule", "ann", "--out", str(run_dir)]) == 0
    return run_dir


def test_evaluate_ann_run(finished_ann_run, capsys):
    status = main(["evaluate", str(finished_ann_run)])

    output = capsys.readouterr().out
    assert status == 0
    summary = json.loads((finished_ann_run / "summary.json").read_text())
    evaluation = json.loads((finished_ann_run / "evaluation.json").read_text())
    assert evaluation["accuracy"] == summary["test_accuracy"]
    assert evaluation["confusion"] == summary["test"]["confusion"]
    assert evaluation["spikes_per_sample"] is None
    assert f"test accuracy {summary['test_accuracy']:.4f}" in output
    assert "no spike statistics: the run trained a ReLU MLP (rule ann)" in output


def test_ann_report_has_curves_and_weights(finished_ann_run, capsys):
    status = main(["report", str(finished_ann_run)])

    assert status == 0
    folder = finished_ann_run / "report"
    assert sorted(path.name for path in folder.glob("*.png")) == ["learning_curves.png", "weights.png"]
    page = (folder / "report.md").read_text()
    assert "ReLU MLP" in page
    assert "spikes per sample" not in page


def test_ann_weights_rejected_by_spiking_run(finished_run, finished_ann_run, capsys):
    path = finished_ann_run / "weights.safetensors"

    error = error_of(capsys, ["evaluate", str(finished_run), "--weights", str(path)])

    assert error == (
        f"error: {path} contains the weights of a ReLUMLP, but this run's configuration builds a SpikingMLP; "
        "evaluate it with the run it came from\n"
    )


def test_no_validation_names_tested_epoch(tmp_path, capsys):
    run_dir = tmp_path / "run"

    assert main(["train", *TINY, "--validation-fraction", "0", "--out", str(run_dir)]) == 0
    assert "last epoch (no validation split) 2, run directory" in capsys.readouterr().out
    assert main(["report", str(run_dir)]) == 0

    page = (run_dir / "report" / "report.md").read_text()
    assert "| tested epoch | 2 of 2 (no validation split, so the last epoch) |" in page
    assert "best epoch" not in page


def test_evaluate_unfinished_run_uses_checkpoint(tmp_path, capsys, caplog):
    run_dir = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(run_dir)]) == 0
    (run_dir / "weights.safetensors").unlink()
    (run_dir / "summary.json").unlink()

    assert main(["evaluate", str(run_dir)]) == 0

    assert "has not finished; using its newest checkpoint batch-000000021.safetensors" in caplog.text
    assert (run_dir / "evaluation-batch-000000021.json").is_file()
    assert not (run_dir / "evaluation.json").exists()


# bad input: each gives "error: ..." on stderr, status 2, and no traceback


def test_unknown_option(capsys):
    error = argparse_error(capsys, ["train", "--learning-rate", "0.1"])
    assert "error: unrecognized arguments: --learning-rate 0.1" in error


def test_bad_integer(capsys):
    error = argparse_error(capsys, ["train", "--epochs", "three"])
    assert "error: argument --epochs: invalid int value: 'three'" in error


def test_bad_layer_widths(capsys):
    error = argparse_error(capsys, ["train", "--hidden", "100,x"])
    assert "argument --hidden: expected comma-separated integers such as 500,500, got '100,x'" in error


def test_unknown_command(capsys):
    error = argparse_error(capsys, ["fit"])
    assert "invalid choice: 'fit'" in error


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--lr", "-0.5"], "error: lr: expected a finite number > 0, got -0.5\n"),
        (["--beta", "2"], "error: beta: expected a number in (0.0, 1.0], got 2.0\n"),
        (["--burn-in", "6", "--steps", "6"], "error: burn_in: expected fewer than steps (6), got 6\n"),
        (["--feedback", "mirror"], "error: feedback: expected one of exact, sign, random, direct, got 'mirror'\n"),
        (["--checkpoint-every", "-1"], "error: checkpoint_every: expected an integer >= 0, got -1\n"),
        (["--dataset", "cifar"], "error: unknown dataset 'cifar', expected one of: digits, mnist, fashion-mnist, arrays\n"),
    ],
)
def test_out_of_range_values(tmp_path, capsys, arguments, message):
    assert error_of(capsys, ["train", *arguments, "--out", str(tmp_path / "run")]) == message
    assert not (tmp_path / "run").exists()


def test_config_file_errors(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text("lr = \n")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("learning_rate = 0.1\n")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00lr")

    assert error_of(capsys, ["train", "--config", str(tmp_path / "none.toml")]) == (
        f"error: configuration file not found: {tmp_path / 'none.toml'}\n"
    )
    assert error_of(capsys, ["train", "--config", str(broken)]).startswith(
        f"error: configuration file {broken} is not valid TOML:"
    )
    assert error_of(capsys, ["train", "--config", str(unknown)]) == "error: unknown setting(s): learning_rate\n"
    assert error_of(capsys, ["train", "--config", str(binary)]).startswith(
        f"error: configuration file {binary} is not valid TOML:"
    )


def write_idx_folder(folder: Path, *, test_labels: int = 20) -> Path:
    """Write small MNIST-like IDX files (50 train and 20 test images of 4x3 pixels)."""
    rng = np.random.default_rng(0)

    def idx(array: np.ndarray) -> bytes:
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(size.to_bytes(4, "big") for size in array.shape)
        return gzip.compress(header + array.astype(np.uint8).tobytes())

    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "train-images-idx3-ubyte.gz": idx(rng.integers(0, 256, size=(50, 4, 3))),
        "train-labels-idx1-ubyte.gz": idx(np.arange(50) % 10),
        "t10k-images-idx3-ubyte.gz": idx(rng.integers(0, 256, size=(20, 4, 3))),
        "t10k-labels-idx1-ubyte.gz": idx(np.arange(test_labels) % 10),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def unchecked_md5(monkeypatch):
    """Skip the official-md5 check, so small hand-made IDX files reach the IDX reader."""
    monkeypatch.setattr(datasets_module, "verify_md5", lambda dataset, path, data: None)


def test_missing_data_files(tmp_path, capsys):
    error = error_of(capsys, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")])
    assert error.startswith("error: mnist files not found:")
    assert str((tmp_path / "mnist" / "train-images-idx3-ubyte.gz").absolute()) in error


def test_modified_data_file_fails_checksum(tmp_path, capsys):
    folder = write_idx_folder(tmp_path / "mnist")
    error = error_of(capsys, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")])
    assert error.startswith(f"error: checksum mismatch for {folder / 'train-images-idx3-ubyte.gz'}")
    assert "The file is corrupted or is not the official mnist release" in error


def test_truncated_data_file(tmp_path, capsys, unchecked_md5):
    folder = write_idx_folder(tmp_path / "mnist")
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-7]))

    error = error_of(capsys, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")])

    assert error.startswith(f"error: {path}")
    assert "truncated" in error


def test_corrupted_gzip_data_file(tmp_path, capsys, unchecked_md5):
    folder = write_idx_folder(tmp_path / "mnist")
    path = folder / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[12:20] = b"\x00" * 8
    path.write_bytes(bytes(data))

    error = error_of(capsys, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")])

    assert error.startswith(f"error: {path}")


def test_wrong_magic_data_file(tmp_path, capsys, unchecked_md5):
    folder = write_idx_folder(tmp_path / "mnist")
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x1f\x00\x08\x01" + gzip.decompress(path.read_bytes())[4:]))

    error = error_of(capsys, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")])

    assert error.startswith(f"error: {path}")
    assert "magic" in error


def test_image_label_count_mismatch(tmp_path, capsys, unchecked_md5):
    write_idx_folder(tmp_path / "mnist", test_labels=19)

    error = error_of(capsys, ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")])

    assert "20 images" in error
    assert "19 labels" in error


def test_nan_in_user_arrays(tmp_path, capsys):
    images = np.random.default_rng(0).random((40, 6)).astype(np.float32)
    images[7, 2] = np.nan
    path = tmp_path / "arrays.npz"
    np.savez(path, x_train=images, y_train=np.arange(40) % 3, x_test=images[:10], y_test=np.arange(10) % 3)

    error = error_of(capsys, ["train", "--dataset", "arrays", "--data-dir", str(path), "--out", str(tmp_path / "r")])

    assert error.startswith(f"error: {path}: x_train contains 1 NaN or infinite values")
    assert "the first in row 7" in error


def test_evaluate_missing_run(tmp_path, capsys):
    assert error_of(capsys, ["evaluate", str(tmp_path / "none")]) == (
        f"error: {tmp_path / 'none'} is not a run directory: config.toml not found\n"
    )


def test_evaluate_truncated_weights(finished_run, tmp_path, capsys):
    path = tmp_path / "truncated.safetensors"
    path.write_bytes((finished_run / "weights.safetensors").read_bytes()[:-100])

    error = error_of(capsys, ["evaluate", str(finished_run), "--weights", str(path)])

    assert error.startswith(f"error: {path} is not a valid safetensors file")
    assert "it may be truncated or of another format" in error


def test_evaluate_weights_of_other_shape(finished_run, tmp_path, capsys):
    path = tmp_path / "other.safetensors"
    atomic_save_tensors(path, SpikingMLP([64, 30, 10]).state_dict(), metadata={"format": "microglia.SpikingMLP"})

    error = error_of(capsys, ["report", str(finished_run), "--weights", str(path)])

    assert error == (
        f"error: {path} does not fit the network 64-20-10 of this run: hidden.0.weight has shape [30, 64], "
        "expected [20, 64]; it was written for another network shape\n"
    )


def test_evaluate_file_that_is_not_safetensors(finished_run, tmp_path, capsys):
    path = tmp_path / "weights.pt"
    torch.save(SpikingMLP([64, 20, 10]).state_dict(), path)

    error = error_of(capsys, ["evaluate", str(finished_run), "--weights", str(path)])

    assert error.startswith(f"error: {path} is not a valid safetensors file")


def test_existing_run_directory(finished_run, capsys):
    before = (finished_run / "metrics.jsonl").read_bytes()

    error = error_of(capsys, ["train", *TINY, "--out", str(finished_run)])

    assert error == (
        f"error: run directory {finished_run} already contains a finished run; choose another --out, "
        "or remove it first\n"
    )
    assert (finished_run / "metrics.jsonl").read_bytes() == before


def test_run_directory_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("keep me\n")

    error = error_of(capsys, ["train", *TINY, "--out", str(path)])

    assert error == f"error: --out {path} is a file, not a folder; choose another --out\n"
    assert path.read_text() == "keep me\n"


def test_unwritable_run_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    error = error_of(capsys, ["train", *TINY, "--out", str(blocker / "run")])

    assert error == f"error: Not a directory: {blocker / 'run'}\n"
