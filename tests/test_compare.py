"""`microglia compare`: grid expansion, the table against the runs' own files, CLI and errors."""

import csv
import json
import logging
import pickle
import signal
import statistics
from multiprocessing import get_context
from pathlib import Path

import pytest

from microglia.cli import main
from microglia.compare import Grid, compare, grid_from_values, plan_runs, read_grid_file
from microglia.compare import runner
from microglia.errors import ConfigError, TrainingInterrupted
from microglia.training import Trainer
from test_resume import interrupt_after, signal_in_every_glial_run

TINY = dict(hidden=[20], epochs=2, steps=4, batch_size=64, lr=5e-3, alignment_probe=64)


def test_grid_expands_glia_axes_only():
    grid = Grid(
        rule=["glia", "bptt", "ann"],
        feedback=["sign", "random"],
        consolidation=["adam", "rprop"],
        sleep_interval=[1, 10],
        seeds=3,
    )
    labels = [configuration.label for configuration in grid.configurations()]
    assert len(labels) == 2 * 2 * 2 + 2
    assert labels[0] == "glia-sign-adam-K1"
    assert labels[-2:] == ["bptt", "ann"]
    assert "glia-random-rprop-K10" in labels


def test_planned_run_settings(tmp_path):
    grid = Grid(rule=["glia", "bptt"], feedback=["direct"], sleep_interval=[5], seeds=2, settings=dict(TINY))
    runs = plan_runs(grid, tmp_path)
    assert [(run.configuration.label, run.seed) for run in runs] == [
        ("glia-direct-adam-K5", 0),
        ("glia-direct-adam-K5", 1),
        ("bptt", 0),
        ("bptt", 1),
    ]
    assert runs[1].config.feedback.value == "direct"
    assert runs[1].config.sleep_interval == 5
    assert runs[1].config.seed == 1
    assert runs[1].config.hidden == (20,)
    assert runs[3].run_dir == tmp_path / "runs" / "bptt" / "seed1"


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(rule=["glia", "hebb"]), "rule: expected values from glia, bptt, perturbation, ann, got 'hebb'"),
        (dict(sleep_interval=[1, 0]), "sleep_interval: expected integers >= 1, got 0"),
        (dict(seeds=0), "seeds: expected a number of seeds >= 1"),
        (dict(seed=3), r"settings: the grid itself sets seed; remove seed from the settings"),
        (dict(feedback=[]), "feedback: expected at least one value, got an empty list"),
        (dict(lr=-1.0), "lr: expected a finite number > 0, got -1.0"),
        (dict(optimizer="adam"), "unknown setting"),
    ],
)
def test_invalid_grid_names_value(values, message):
    with pytest.raises(ConfigError, match=message):
        grid_from_values(values)


def test_grid_file_missing(tmp_path):
    with pytest.raises(ConfigError, match="grid file not found"):
        read_grid_file(tmp_path / "absent.toml")


def read_summaries(out, label, seeds):
    return [json.loads((out / "runs" / label / f"seed{seed}" / "summary.json").read_text()) for seed in range(seeds)]


def read_metrics(out, label, seed):
    lines = (out / "runs" / label / f"seed{seed}" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_compare_table_matches_run_files(tmp_path):
    out = tmp_path / "compare"
    grid = Grid(rule=["glia", "bptt", "ann"], feedback=["sign"], seeds=2, settings=dict(TINY))
    result = compare(grid, out, workers=1)

    assert (out / "results.csv").exists()
    assert (out / "results.md").exists()
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "results.csv", newline="") as file:
        rows = {row["configuration"]: row for row in csv.DictReader(file)}
    assert list(rows) == ["glia-sign-adam-K1", "bptt", "ann"]

    for label, row in rows.items():
        summaries = read_summaries(out, label, 2)
        accuracies = [summary["test_accuracy"] for summary in summaries]
        assert float(row["test_accuracy_mean"]) == pytest.approx(statistics.fmean(accuracies), abs=1e-12)
        assert float(row["test_accuracy_std"]) == pytest.approx(statistics.stdev(accuracies), abs=1e-12)
        seconds = [summary["train_seconds"] for summary in summaries]
        assert float(row["train_seconds_mean"]) == pytest.approx(statistics.fmean(seconds), abs=1e-9)
        speeds = [summary["train_samples_per_second"] for summary in summaries]
        assert float(row["samples_per_second_mean"]) == pytest.approx(statistics.fmean(speeds), rel=1e-12)
        writes = [statistics.fmean(r["weight_writes_per_sample"] for r in read_metrics(out, label, s)) for s in (0, 1)]
        assert float(row["writes_per_sample_mean"]) == pytest.approx(statistics.fmean(writes), rel=1e-12)
        assert row["seeds"] == "2"
        assert row["failed"] == "0"
        if label == "ann":
            assert row["spikes_per_sample_mean"] == ""
        else:
            spikes = [summary["test"]["spikes_per_sample"] for summary in summaries]
            assert float(row["spikes_per_sample_mean"]) == pytest.approx(statistics.fmean(spikes), rel=1e-12)

    markdown = (out / "results.md").read_text()
    mean = 100 * float(rows["bptt"]["test_accuracy_mean"])
    std = 100 * float(rows["bptt"]["test_accuracy_std"])
    assert f"| bptt | 2 | {mean:.2f} ± {std:.2f} |" in markdown
    assert "| ann | 2 |" in markdown
    assert "| n/a |" in markdown
    assert [row.label for row in result.rows] == list(rows)

    # glia runs log one alignment value per synaptic layer and epoch; the others log none
    glia = read_metrics(out, "glia-sign-adam-K1", 0)
    assert all(len(record["alignment_angle_deg"]) == 2 for record in glia)
    assert all(0.0 <= value <= 1.0 for record in glia for value in record["sign_agreement"])
    assert read_metrics(out, "bptt", 0)[0]["alignment_angle_deg"] is None


def test_compare_reuses_finished_runs(tmp_path):
    out = tmp_path / "compare"
    grid = Grid(rule=["bptt"], seeds=1, settings=dict(TINY, epochs=1))
    compare(grid, out, workers=1)
    summary = out / "runs" / "bptt" / "seed0" / "summary.json"
    written = summary.stat().st_mtime_ns

    compare(grid, out, workers=1)
    assert summary.stat().st_mtime_ns == written

    changed = Grid(rule=["bptt"], seeds=1, settings=dict(TINY, epochs=1, lr=1e-3))
    with pytest.raises(ConfigError, match="contains a finished run with other settings"):
        compare(changed, out, workers=1)


def test_compare_command_in_parallel_processes(tmp_path, capsys):
    out = tmp_path / "compare"
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text('rule = ["glia"]\nfeedback = ["sign", "direct"]\nepochs = 1\nsteps = 4\nhidden = [20]\n')
    status = main(["compare", "--grid", str(grid_file), "--seeds", "1", "--workers", "2", "--quiet", "--out", str(out)])

    assert status == 0
    printed = capsys.readouterr().out
    assert "| glia-sign-adam-K1 | 1 |" in printed
    assert "| glia-direct-adam-K1 | 1 |" in printed
    assert (out / "results.png").exists()
    config = (out / "runs" / "glia-direct-adam-K1" / "seed0" / "config.toml").read_text()
    assert 'feedback = "direct"' in config
    assert "threads = 1" in config


def test_compare_command_reports_bad_axis(tmp_path, capsys):
    status = main(["compare", "--rule", "glia", "--consolidation", "momentum", "--out", str(tmp_path / "c")])
    assert status == 2
    assert "consolidation: expected values from sgd, adam, sign, rprop, got 'momentum'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "line, message",
    [
        ('workers = "two"', "workers: expected an integer >= 0 (0: one per core), got 'two'"),
        ("workers = 1.5", "workers: expected an integer >= 0 (0: one per core), got 1.5"),
        ("workers = true", "workers: expected an integer >= 0 (0: one per core), got True"),
        ("workers = -1", "workers: expected an integer >= 0 (0: one per core), got -1"),
        ("seeds = 1.5", "seeds: expected a number of seeds >= 1 (seeds 0 to seeds-1 run), got 1.5"),
        ('seeds = "2"', "seeds: expected a number of seeds >= 1 (seeds 0 to seeds-1 run), got '2'"),
        ("sleep_interval = [1.5]", "sleep_interval: expected integers >= 1, got 1.5"),
        ('sleep_interval = ["10"]', "sleep_interval: expected integers >= 1, got '10'"),
        ("sleep_interval = 2.9", "sleep_interval: expected integers >= 1, got 2.9"),
        ('rule = [["glia"]]', "rule: expected values from glia, bptt, perturbation, ann, got ['glia']"),
        ("feedback = [1]", "feedback: expected values from exact, sign, random, direct, got 1"),
        ("threads = 1.5", "threads: expected an integer >= 0, got 1.5"),
        ("epochs = 2.0", "epochs: expected an integer >= 1, got 2.0"),
    ],
)
def test_grid_file_rejects_wrong_type(tmp_path, capsys, line, message):
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(line + "\n")
    status = main(["compare", "--grid", str(grid_file), "--quiet", "--out", str(tmp_path / "c")])

    assert status == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("line, shown", [("out = 5", "5"), ('out = ""', "''")])
def test_grid_file_rejects_invalid_out(tmp_path, capsys, line, shown):
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(f"{line}\n")
    status = main(["compare", "--grid", str(grid_file), "--quiet"])

    assert status == 2
    assert capsys.readouterr().err == f"error: out: expected a non-empty folder path, got {shown}\n"


def test_compare_rejects_fractional_workers(tmp_path):
    grid = Grid(rule=["bptt"], settings=dict(TINY, epochs=1))
    with pytest.raises(ConfigError) as raised:
        compare(grid, tmp_path / "c", workers=1.5)

    assert str(raised.value) == "workers: expected an integer >= 0 (0: one per core), got 1.5"
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("text", ["1.5", "10,x", ","])
def test_sleep_interval_option_rejects_non_integers(tmp_path, capsys, text):
    with pytest.raises(SystemExit) as raised:
        main(["compare", "--sleep-interval", text, "--out", str(tmp_path / "c")])

    assert raised.value.code == 2
    message = f"argument --sleep-interval: expected comma-separated integers such as 1,10, got {text!r}"
    assert message in capsys.readouterr().err


def test_sleep_interval_option_parses_integers(tmp_path, monkeypatch):
    planned = {}

    def record(grid, out, *, workers):
        planned.update(sleep_interval=grid.sleep_interval, workers=workers)
        raise ConfigError("stop before training")

    monkeypatch.setattr("microglia.compare.compare", record)
    status = main(["compare", "--sleep-interval", "1, 10", "--workers", "1", "--quiet", "--out", str(tmp_path / "c")])

    assert status == 2
    assert planned == {"sleep_interval": [1, 10], "workers": 1}


@pytest.mark.parametrize(
    "arguments, unknown",
    [
        (["compare", "--seed", "3"], "--seed 3"),
        (["compare", "--work", "1"], "--work 1"),
        (["train", "--conf", "settings.toml"], "--conf settings.toml"),
        (["evaluate", "runs/x", "--weight", "w.safetensors"], "--weight w.safetensors"),
    ],
)
def test_option_abbreviations_rejected(capsys, arguments, unknown):
    with pytest.raises(SystemExit) as raised:
        main(arguments)

    assert raised.value.code == 2
    assert f"unrecognized arguments: {unknown}" in capsys.readouterr().err


RESUMABLE = dict(hidden=[20], epochs=2, steps=6, batch_size=64, lr=5e-3, threads=1, checkpoint_every=5)
"""digits in 21 minibatches per epoch, with a checkpoint every 5."""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The summary.json of the glia run of RESUMABLE, compared without interruption."""
    out = tmp_path_factory.mktemp("uninterrupted")
    compare(Grid(settings=dict(RESUMABLE)), out, workers=1)
    return read_summaries(out, "glia-sign-adam-K1", 1)[0]


def interrupt_planned_run(grid, out, digits, batches, **changes):
    """Start the grid's first run as `compare` plans it and stop it by SIGINT in minibatch `batches`."""
    config = plan_runs(grid, out)[0].config.replace(**changes)
    trainer = Trainer(config, dataset=digits, progress=False)
    interrupt_after(trainer, batches)
    with pytest.raises(TrainingInterrupted):
        trainer.run()
    return Path(config.out)


@pytest.mark.parametrize("batches", [7, 30], ids=["epoch1", "epoch2"])
def test_compare_resumes_interrupted_run(tmp_path, digits, uninterrupted, caplog, batches):
    out = tmp_path / "compare"
    grid = Grid(settings=dict(RESUMABLE))
    run_dir = interrupt_planned_run(grid, out, digits, batches)
    assert (run_dir / "metrics.jsonl").exists() == (batches > 21)

    with caplog.at_level(logging.INFO, logger="microglia"):
        result = compare(grid, out, workers=1)

    assert [outcome.error for outcome in result.outcomes] == [None]
    assert "resuming 1 unfinished run(s) from their newest checkpoints" in caplog.messages
    assert any(message.startswith(f"resuming {run_dir} from batch-") for message in caplog.messages)
    summary = read_summaries(out, "glia-sign-adam-K1", 1)[0]
    assert summary["test_accuracy"] == uninterrupted["test_accuracy"]
    assert summary["test"] == uninterrupted["test"]


def test_compare_resume_ignores_thread_count(tmp_path, digits, uninterrupted, caplog):
    out = tmp_path / "compare"
    grid = Grid(settings=dict(RESUMABLE))
    interrupt_planned_run(grid, out, digits, 3, threads=2)

    with caplog.at_level(logging.INFO, logger="microglia"):
        result = compare(grid, out, workers=1)

    assert [outcome.error for outcome in result.outcomes] == [None]
    assert "resuming 1 unfinished run(s) from their newest checkpoints" in caplog.messages
    assert read_summaries(out, "glia-sign-adam-K1", 1)[0]["epochs_run"] == 2


def test_compare_command_continues_after_sigint(tmp_path, monkeypatch, capsys, uninterrupted):
    signal_in_every_glial_run(monkeypatch, 30, signal.SIGINT)
    out = tmp_path / "compare"
    options = ["--hidden", "20", "--epochs", "2", "--steps", "6", "--batch-size", "64", "--lr", "5e-3"]
    command = ["compare", *options, "--threads", "1", "--checkpoint-every", "5", "--workers", "1", "--quiet", "--out", str(out)]

    assert main(command) == 130
    error = capsys.readouterr().err
    assert "stopped by SIGINT at epoch 2, batch 9" in error
    assert error.endswith(
        "; to continue the whole comparison, rerun the same microglia compare command: "
        "it reuses finished runs and resumes unfinished ones\n"
    )

    monkeypatch.undo()
    assert main(command) == 0
    summary = read_summaries(out, "glia-sign-adam-K1", 1)[0]
    assert summary["test_accuracy"] == uninterrupted["test_accuracy"]
    assert summary["test"] == uninterrupted["test"]


def test_compare_rejects_changed_unfinished_run(tmp_path, digits):
    out = tmp_path / "compare"
    run_dir = interrupt_planned_run(Grid(settings=dict(RESUMABLE)), out, digits, 3)

    changed = Grid(settings=dict(RESUMABLE, lr=1e-3, steps=8, threads=2))
    with pytest.raises(ConfigError) as raised:
        compare(changed, out, workers=1)

    assert str(raised.value) == (
        f"run directory {run_dir} contains an unfinished run with other settings "
        "(burn_in 1 in config.toml, 2 planned; lr 0.005 in config.toml, 0.001 planned; "
        "steps 6 in config.toml, 8 planned); choose another --out or remove that folder"
    )


def test_compare_command_after_divergence(tmp_path, capsys, caplog):
    out = tmp_path / "compare"
    run_dir = out / "runs" / "ann" / "seed0"
    options = ["--rule", "ann", "--hidden", "20", "--epochs", "1", "--steps", "6", "--threads", "1", "--quiet"]

    # lr 1e30 makes the loss NaN in the first minibatch, before metrics.jsonl exists
    assert main(["compare", *options, "--lr", "1e30", "--out", str(out)]) == 1
    assert "[1/1] ann seed 0 failed: training diverged" in caplog.text
    assert not (run_dir / "metrics.jsonl").exists()
    capsys.readouterr()
    caplog.clear()

    assert main(["compare", *options, "--lr", "1e-3", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: run directory {run_dir} contains an unfinished run with other settings "
        "(lr 1e+30 in config.toml, 0.001 planned); choose another --out or remove that folder\n"
    )

    # the same settings resume the run from its last good checkpoint, and it diverges again
    assert main(["compare", *options, "--lr", "1e30", "--out", str(out)]) == 1
    assert "[1/1] ann seed 0 failed: training diverged" in caplog.text


def test_compare_rejects_run_files_without_config(tmp_path):
    grid = Grid(rule=["bptt"], settings=dict(TINY, epochs=1))
    run_dir = tmp_path / "runs" / "bptt" / "seed0"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("")

    with pytest.raises(ConfigError) as raised:
        compare(grid, tmp_path, workers=1)

    assert str(raised.value) == (
        f"run directory {run_dir} contains metrics.jsonl, checkpoints but no config.toml; "
        "remove that folder to run it again"
    )


def test_compare_rejects_invalid_run_config(tmp_path):
    grid = Grid(rule=["bptt"], settings=dict(TINY, epochs=1))
    run_dir = tmp_path / "runs" / "bptt" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text("optimizer = 'adam'\n")

    with pytest.raises(ConfigError) as raised:
        compare(grid, tmp_path, workers=1)

    assert str(raised.value) == (
        f"run directory {run_dir} contains an invalid config.toml (unknown setting(s): optimizer); "
        "remove that folder to run it again"
    )


def test_worker_skips_runs_after_interruption(tmp_path, monkeypatch):
    stopped = get_context("spawn").Event()
    stopped.set()
    monkeypatch.setattr(runner, "_comparison_stopped", stopped)
    settings = dict(TINY, rule="bptt", epochs=1, out=str(tmp_path / "run"))

    assert runner._train_one(settings, False) == "not started: the comparison was interrupted"
    assert not (tmp_path / "run").exists()


def test_training_interrupted_survives_pickling():
    # worker processes of `microglia compare` send this error to the main process
    copy = pickle.loads(pickle.dumps(TrainingInterrupted("stopped by SIGINT", signal.SIGINT)))

    assert str(copy) == "stopped by SIGINT"
    assert copy.signal_number == signal.SIGINT
