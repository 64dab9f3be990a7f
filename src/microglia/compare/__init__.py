"""`microglia compare`: run a grid of learning rules over seeds and tabulate mean ± std.

Output folder layout: `runs/<configuration>/seed<k>/` (one run directory each),
`results.csv`, `results.md` and `results.png`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from microglia.compare.figure import plot_comparison
from microglia.compare.grid import Configuration, Grid, grid_from_values, read_grid_file
from microglia.compare.report import RunRecord, TableRow, build_table, read_runs, table_csv, table_markdown, write_tables
from microglia.compare.runner import PlannedRun, RunOutcome, check_workers, execute, plan_runs

logger = logging.getLogger(__name__)


@dataclass
class Comparison:
    """Result of a comparison: the table rows, every run's outcome and the written files."""

    rows: list[TableRow]
    outcomes: list[RunOutcome]
    csv_path: Path
    markdown_path: Path
    figure_path: Path


def compare(grid: Grid, out: str | Path, *, workers: int = 0) -> Comparison:
    """Run every run of `grid` into `out`, then write the table and figure.

    Finished runs in `out` are reused and unfinished ones resume from their newest checkpoint.
    """
    check_workers(workers)
    out = Path(out)
    runs = plan_runs(grid, out)
    logger.info("comparing %d configuration(s) over %d seed(s): %d run(s) in %s", len(runs) // grid.seeds, grid.seeds, len(runs), out)
    outcomes = execute(runs, workers=workers)

    records = read_runs(outcomes)
    rows = build_table(outcomes, records)
    csv_path, markdown_path = write_tables(rows, out)
    figure_path = plot_comparison(rows, records, out / "results.png")
    return Comparison(rows, outcomes, csv_path, markdown_path, figure_path)


__all__ = [
    "Comparison",
    "Configuration",
    "Grid",
    "PlannedRun",
    "RunOutcome",
    "RunRecord",
    "TableRow",
    "build_table",
    "compare",
    "grid_from_values",
    "plan_runs",
    "read_grid_file",
    "read_runs",
    "table_csv",
    "table_markdown",
]
