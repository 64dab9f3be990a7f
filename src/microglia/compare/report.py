"""The comparison table and figure, read back from the runs' own `summary.json` and `metrics.jsonl`.

Per configuration, over its finished seeds: mean and sample standard deviation (n - 1) of

    test_accuracy       summary.json `test_accuracy`
    train_seconds       summary.json `train_seconds` (wall time of training, without the final test)
    samples_per_second  summary.json `train_samples_per_second`
    spikes_per_sample   summary.json `test.spikes_per_sample` (hidden spikes per test sample)
    writes_per_sample   mean over epochs of metrics.jsonl `weight_writes_per_sample`

A configuration with one seed has no standard deviation (empty in the CSV, no "±" in Markdown).
A statistic that a rule does not have (spikes of the `ann` rule) is empty, "n/a" in Markdown.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from microglia.compare.runner import RunOutcome

STATISTICS = ("test_accuracy", "train_seconds", "samples_per_second", "spikes_per_sample", "writes_per_sample")

MARKDOWN_COLUMNS = {
    "test_accuracy": ("test accuracy (%)", 100.0, 2),
    "train_seconds": ("wall time (s)", 1.0, 0),
    "samples_per_second": ("samples/s", 1.0, 0),
    "spikes_per_sample": ("spikes/sample", 1.0, 0),
    "writes_per_sample": ("writes/sample", 1.0, 1),
}
"""Markdown header, scale and decimals of each statistic."""


@dataclass
class RunRecord:
    """The files of one finished run, read back."""

    label: str
    seed: int
    summary: dict
    metrics: list[dict]

    def value(self, statistic: str) -> float | None:
        """Return one statistic of `STATISTICS` for this run (None when the rule has none)."""
        if statistic == "test_accuracy":
            return self.summary["test_accuracy"]
        if statistic == "train_seconds":
            return self.summary["train_seconds"]
        if statistic == "samples_per_second":
            return self.summary["train_samples_per_second"]
        if statistic == "spikes_per_sample":
            return self.summary["test"]["spikes_per_sample"]
        if statistic == "writes_per_sample":
            return statistics.fmean(record["weight_writes_per_sample"] for record in self.metrics)
        raise ValueError(f"unknown statistic {statistic!r}; expected one of {', '.join(STATISTICS)}")


@dataclass
class TableRow:
    """One configuration of the table: its label, axes, seed counts and (mean, std) per statistic."""

    label: str
    axes: dict
    seeds: int
    failed: int
    values: dict[str, tuple[float | None, float | None]]


def read_runs(outcomes: list[RunOutcome]) -> list[RunRecord]:
    """Read `summary.json` and `metrics.jsonl` of every run that finished."""
    records = []
    for outcome in outcomes:
        if outcome.error is not None:
            continue
        run_dir = outcome.run.run_dir
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        metrics = [json.loads(line) for line in lines if line.strip()]
        records.append(RunRecord(outcome.run.configuration.label, outcome.run.seed, summary, metrics))
    return records


def build_table(outcomes: list[RunOutcome], records: list[RunRecord]) -> list[TableRow]:
    """Aggregate the runs per configuration, in grid order."""
    rows = []
    labels = list(dict.fromkeys(outcome.run.configuration.label for outcome in outcomes))
    for label in labels:
        configuration = next(o.run.configuration for o in outcomes if o.run.configuration.label == label)
        runs = [record for record in records if record.label == label]
        failed = sum(1 for o in outcomes if o.run.configuration.label == label and o.error is not None)
        values = {statistic: _mean_std([run.value(statistic) for run in runs]) for statistic in STATISTICS}
        axes = {
            "rule": configuration.rule.value,
            "feedback": configuration.feedback.value if configuration.feedback else "",
            "consolidation": configuration.consolidation.value if configuration.consolidation else "",
            "sleep_interval": configuration.sleep_interval or "",
        }
        rows.append(TableRow(label, axes, len(runs), failed, values))
    return rows


def table_csv(rows: list[TableRow]) -> str:
    """Return the table as CSV: axes, seeds, failed, then `<statistic>_mean` and `<statistic>_std`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["configuration", "rule", "feedback", "consolidation", "sleep_interval", "seeds", "failed"]
    header += [f"{statistic}_{part}" for statistic in STATISTICS for part in ("mean", "std")]
    writer.writerow(header)
    for row in rows:
        line = [row.label, *row.axes.values(), row.seeds, row.failed]
        for statistic in STATISTICS:
            line += ["" if value is None else repr(value) for value in row.values[statistic]]
        writer.writerow(line)
    return buffer.getvalue()


def table_markdown(rows: list[TableRow]) -> str:
    """Return the table as Markdown, `mean ± std` in each cell."""
    header = ["configuration", "seeds", *(MARKDOWN_COLUMNS[statistic][0] for statistic in STATISTICS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for row in rows:
        seeds = str(row.seeds) if not row.failed else f"{row.seeds} ({row.failed} failed)"
        cells = [row.label, seeds]
        for statistic in STATISTICS:
            _, scale, decimals = MARKDOWN_COLUMNS[statistic]
            cells.append(_format_cell(*row.values[statistic], scale, decimals))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    present = [value for value in values if value is not None]
    if not present:
        return None, None
    mean = statistics.fmean(present)
    std = statistics.stdev(present) if len(present) > 1 else None
    return mean, std


def _format_cell(mean: float | None, std: float | None, scale: float, decimals: int) -> str:
    if mean is None or not math.isfinite(mean):
        return "n/a"
    text = f"{mean * scale:.{decimals}f}"
    if std is not None:
        text += f" ± {std * scale:.{decimals}f}"
    return text


def write_tables(rows: list[TableRow], out: Path) -> tuple[Path, Path]:
    """Write `results.csv` and `results.md` into `out`; return their paths."""
    from microglia.training.files import atomic_write_bytes

    csv_path, markdown_path = out / "results.csv", out / "results.md"
    atomic_write_bytes(csv_path, table_csv(rows).encode())
    atomic_write_bytes(markdown_path, table_markdown(rows).encode())
    return csv_path, markdown_path
