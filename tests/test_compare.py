"""`microglia compare`: grid expansion, the table against the runs' own files, CLI and errors."""

import csv
import json
import statistics

import pytest

from microglia.cli import main
from microglia.compare import Grid, compare, grid_from_values, plan_runs, read_grid_file
from microglia.errors import ConfigError

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
        (dict(seeds=0), "seeds: expected an integer >= 1"),
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
        ("seeds = 1.5", "seeds: expected an integer >= 1 (the number of seeds, 0 to N-1), got 1.5"),
        ('seeds = "2"', "seeds: expected an integer >= 1 (the number of seeds, 0 to N-1), got '2'"),
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
