"""Run every run of a comparison grid, in parallel processes, each into its own run directory.

Layout under the output folder: `runs/<configuration label>/seed<k>/` (a normal run directory,
see `microglia.training.Trainer`). A run directory that already contains a finished run with
the same settings is reused, so an interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from microglia.compare.grid import Configuration, Grid
from microglia.errors import ConfigError, MicrogliaError
from microglia.training.config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class PlannedRun:
    """One run of the grid: a configuration, a seed and its settings."""

    configuration: Configuration
    seed: int
    config: TrainConfig

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out)


@dataclass
class RunOutcome:
    """Outcome of one planned run: `error` is None when it finished and wrote `summary.json`."""

    run: PlannedRun
    error: str | None = None


def plan_runs(grid: Grid, out: Path) -> list[PlannedRun]:
    """List every run of the grid, configurations first, then seeds 0 to N-1."""
    runs = []
    for configuration in grid.configurations():
        for seed in range(grid.seeds):
            run_dir = out / "runs" / configuration.label / f"seed{seed}"
            runs.append(PlannedRun(configuration, seed, grid.run_config(configuration, seed, run_dir)))
    return runs


def is_finished(run: PlannedRun) -> bool:
    """Check whether `run` already finished with the same settings.

    Raises:
        ConfigError: the folder contains an unfinished run, or a finished run with other settings.
    """
    run_dir = run.run_dir
    if (run_dir / "summary.json").exists():
        # the thread count changes the speed, not the result, and config.toml never stores `out`
        written = TrainConfig.from_toml(run_dir / "config.toml").to_dict()
        expected = run.config.to_dict()
        for name in ("threads", "out"):
            written.pop(name, None)
            expected.pop(name, None)
        if written != expected:
            raise ConfigError(
                f"run directory {run_dir} contains a finished run with other settings; "
                "choose another --out or remove that folder"
            )
        return True
    if (run_dir / "metrics.jsonl").exists():
        raise ConfigError(
            f"run directory {run_dir} contains an unfinished run; remove that folder to run it again"
        )
    return False


def check_workers(workers: object) -> None:
    """Raise ConfigError unless `workers` is an integer >= 0."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers: expected an integer >= 0 (0: one per core), got {workers!r}")


def default_workers(pending: int) -> int:
    """Return one process per CPU core, at most one per pending run."""
    return max(1, min(pending, os.cpu_count() or 1))


def execute(runs: list[PlannedRun], *, workers: int = 0) -> list[RunOutcome]:
    """Run every unfinished run, `workers` at a time (0: one per core), and return every outcome.

    Each process gets `cores / workers` torch threads unless the settings fix `threads`. A run
    that fails with a microglia error (diverged, say) is reported in its outcome, not raised.
    """
    check_workers(workers)
    pending = [run for run in runs if not is_finished(run)]
    reused = len(runs) - len(pending)
    if reused:
        logger.info("reusing %d finished run(s)", reused)
    workers = workers or default_workers(len(pending))
    threads = max(1, (os.cpu_count() or 1) // workers)
    for run in pending:
        if run.config.threads == 0:
            run.config = run.config.replace(threads=threads)

    errors: dict[int, str] = {}
    start = time.perf_counter()
    if workers == 1 or len(pending) <= 1:
        for index, run in enumerate(pending):
            errors[index] = _train_one(run.config.to_dict())
            _log_finished(run, errors[index], index + 1, len(pending), start)
    else:
        logger.info("running %d run(s) in %d processes with %d thread(s) each", len(pending), workers, threads)
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_train_one, run.config.to_dict()): index for index, run in enumerate(pending)}
            for done, future in enumerate(as_completed(futures), start=1):
                index = futures[future]
                errors[index] = future.result()
                _log_finished(pending[index], errors[index], done, len(pending), start)

    failed = {id(pending[index]): error for index, error in errors.items()}
    return [RunOutcome(run, failed.get(id(run))) for run in runs]


def _train_one(settings: dict) -> str | None:
    """Train one run in this process; return None, or the message of the microglia error that stopped it."""
    from microglia.training import Trainer

    try:
        Trainer(TrainConfig.from_dict(settings), progress=False).run()
    except MicrogliaError as error:
        return str(error)
    return None


def _log_finished(run: PlannedRun, error: str | None, done: int, total: int, start: float) -> None:
    elapsed = time.perf_counter() - start
    if error is None:
        logger.info("[%d/%d] finished %s seed %d (%.0f s so far)", done, total, run.configuration.label, run.seed, elapsed)
    else:
        logger.error("[%d/%d] %s seed %d failed: %s", done, total, run.configuration.label, run.seed, error)
