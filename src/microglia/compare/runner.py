"""Run every run of a comparison grid, in parallel processes, each into its own run directory.

Layout under the output folder: `runs/<configuration label>/seed<k>/` (a normal run directory,
see `microglia.training.Trainer`). A run directory that already contains a run with the same
settings is reused when it finished and resumed from its newest checkpoint when it did not, so
an interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from microglia.compare.grid import Configuration, Grid
from microglia.errors import ConfigError, MicrogliaError, TrainingInterrupted
from microglia.training.checkpoint import CHECKPOINT_DIR
from microglia.training.config import TrainConfig

logger = logging.getLogger(__name__)

IGNORED_SETTINGS = ("threads", "out")
"""Settings that may differ from a run directory's config.toml. The thread count changes the
speed and at most the last bits of the weights, and config.toml never stores `out`."""


class RunState(enum.Enum):
    """Contents of a planned run's directory before the comparison starts."""

    NEW = "new"
    UNFINISHED = "unfinished"
    FINISHED = "finished"


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


def existing_run(run: PlannedRun) -> RunState:
    """Check what `run`'s directory contains: no run, an unfinished run, or a finished run.

    The run there must have the settings of `run` (apart from IGNORED_SETTINGS), read from its
    config.toml, which every run writes before its first minibatch.

    Raises:
        ConfigError: the folder contains a run with other settings, or run files without a config.toml.
    """
    run_dir = run.run_dir
    config_path = run_dir / "config.toml"
    finished = (run_dir / "summary.json").exists()
    if not config_path.exists():
        found = [name for name in ("summary.json", "metrics.jsonl", CHECKPOINT_DIR) if (run_dir / name).exists()]
        if found:
            raise ConfigError(
                f"run directory {run_dir} contains {', '.join(found)} but no config.toml; "
                "remove that folder to run it again"
            )
        return RunState.NEW

    try:
        written = TrainConfig.from_toml(config_path)
    except ConfigError as error:
        raise ConfigError(
            f"run directory {run_dir} contains an invalid config.toml ({error}); remove that folder to run it again"
        ) from None
    differences = setting_differences(written, run.config)
    if differences:
        state = "a finished" if finished else "an unfinished"
        raise ConfigError(
            f"run directory {run_dir} contains {state} run with other settings ({'; '.join(differences)}); "
            "choose another --out or remove that folder"
        )
    return RunState.FINISHED if finished else RunState.UNFINISHED


def setting_differences(written: TrainConfig, planned: TrainConfig) -> list[str]:
    """Describe each setting other than IGNORED_SETTINGS that differs: `lr 0.001 in config.toml, 0.002 planned`."""
    written_values = written.to_dict()
    planned_values = planned.to_dict()
    differences = []
    for name in sorted(set(written_values) | set(planned_values)):
        if name in IGNORED_SETTINGS:
            continue
        before = written_values.get(name, "unset")
        after = planned_values.get(name, "unset")
        if before != after:
            differences.append(f"{name} {before} in config.toml, {after} planned")
    return differences


def check_workers(workers: object) -> None:
    """Raise ConfigError unless `workers` is an integer >= 0."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers: expected an integer >= 0 (0: one per core), got {workers!r}")


def default_workers(pending: int) -> int:
    """Return one process per CPU core, at most one per pending run."""
    return max(1, min(pending, os.cpu_count() or 1))


def execute(runs: list[PlannedRun], *, workers: int = 0) -> list[RunOutcome]:
    """Run every run that has not finished, `workers` at a time (0: one per core), and return every outcome.

    Finished runs are reused and unfinished ones resume from their newest checkpoint. Each
    process gets `cores / workers` torch threads unless the settings fix `threads`. A run that
    fails with a microglia error (diverged, say) is reported in its outcome, not raised.

    Raises:
        ConfigError: `workers` is invalid, or a run directory contains a run with other settings
            (checked for every run before any starts).
    """
    check_workers(workers)
    states = {id(run): existing_run(run) for run in runs}
    pending = [run for run in runs if states[id(run)] is not RunState.FINISHED]
    reused = len(runs) - len(pending)
    if reused:
        logger.info("reusing %d finished run(s)", reused)
    resumed = sum(1 for run in pending if states[id(run)] is RunState.UNFINISHED)
    if resumed:
        logger.info("resuming %d unfinished run(s) from their newest checkpoints", resumed)

    workers = workers or default_workers(len(pending))
    threads = max(1, (os.cpu_count() or 1) // workers)
    for run in pending:
        if run.config.threads == 0:
            run.config = run.config.replace(threads=threads)

    jobs = [(run.config.to_dict(), states[id(run)] is RunState.UNFINISHED) for run in pending]
    errors: dict[int, str] = {}
    start = time.perf_counter()
    if workers == 1 or len(pending) <= 1:
        for index, run in enumerate(pending):
            errors[index] = _train_one(*jobs[index])
            _log_finished(run, errors[index], index + 1, len(pending), start)
    else:
        logger.info("running %d run(s) in %d processes with %d thread(s) each", len(pending), workers, threads)
        context = get_context("spawn")
        stopped = context.Event()
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(stopped,)) as pool:
            futures = {pool.submit(_train_one, *job): index for index, job in enumerate(jobs)}
            try:
                for done, future in enumerate(as_completed(futures), start=1):
                    index = futures[future]
                    errors[index] = future.result()
                    _log_finished(pending[index], errors[index], done, len(pending), start)
            except BaseException:
                # Ctrl-C or an interrupted run: start no further run and wait for the running
                # ones. Ctrl-C reaches every process of the terminal's foreground process group,
                # so each running run stops at its next minibatch with a checkpoint.
                stopped.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    failed = {id(pending[index]): error for index, error in errors.items()}
    return [RunOutcome(run, failed.get(id(run))) for run in runs]


_comparison_stopped = None
"""In a worker process: the event that is set once the comparison was interrupted, so that
runs the pool had already handed to the worker do not start."""


def _start_worker(stopped) -> None:
    global _comparison_stopped
    _comparison_stopped = stopped


def _train_one(settings: dict, resume: bool) -> str | None:
    """Train one run in this process, or resume it from its run directory's newest checkpoint.

    Returns None, or the message of the microglia error that stopped the run.
    """
    from microglia.training import Trainer

    if _comparison_stopped is not None and _comparison_stopped.is_set():
        return "not started: the comparison was interrupted"
    try:
        config = TrainConfig.from_dict(settings)
        if resume:
            # the run's own config.toml has the same settings, apart from the thread count
            trainer = Trainer.resume(config.out, progress=False, threads=config.threads)
        else:
            trainer = Trainer(config, progress=False)
        trainer.run()
    except MicrogliaError as error:
        return str(error)
    except TrainingInterrupted:
        if _comparison_stopped is not None:
            _comparison_stopped.set()
        raise
    return None


def _log_finished(run: PlannedRun, error: str | None, done: int, total: int, start: float) -> None:
    elapsed = time.perf_counter() - start
    if error is None:
        logger.info("[%d/%d] finished %s seed %d (%.0f s so far)", done, total, run.configuration.label, run.seed, elapsed)
    else:
        logger.error("[%d/%d] %s seed %d failed: %s", done, total, run.configuration.label, run.seed, error)
