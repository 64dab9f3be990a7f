"""Benchmark glial learning against BPTT in microglia, snnTorch and Norse; write docs/benchmarks.md.

    python bench/run.py --threads 1 --data-dir DATA_DIR

measures, in one run: training and inference throughput of every contender (alternating
them round by round), peak memory of each training configuration in a fresh process, the
rate of glial training against the machine's float32 matrix-product peak, and the wall
time of one MNIST epoch (read from DATA_DIR/mnist). It writes the report (`--out`) and
the raw figures (`--json`).
`--quick` runs tiny sizes in seconds, for the tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    # run as a script: make the repository root importable, so `bench` is a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from bench.contenders import (
    CONTENDERS,
    GLIAL_CONTENDERS,
    build_contender,
    default_chunk_steps,
    import_benchmark_libraries,
)
from bench.epoch import time_epoch
from bench.flops import glial_training_flops
from bench.measure import (
    direct_current_batch,
    machine_description,
    matmul_gflops,
    measure_peak_memory,
    memory_worker,
    time_alternating,
)
from bench.report import evaluate_targets, write_report

logger = logging.getLogger("bench")

REPOSITORY = Path(__file__).resolve().parent.parent
FULL = {
    "networks": [[784, 500, 10], [784, 800, 800, 10]],
    "steps": [10, 25, 50, 100],
    "batch_size": 128,
    "rounds": 3,
    "batches": 1,
    "memory_batches": 2,
    "matmul_size": 2048,
}
QUICK = {
    "networks": [[20, 16, 4], [20, 12, 12, 4]],
    "steps": [3, 6],
    "batch_size": 8,
    "rounds": 1,
    "batches": 1,
    "memory_batches": 1,
    "matmul_size": 128,
}
QUICK_MEMORY_CONTENDERS = ["glia-sign", "snntorch-bptt"]
"""Contenders whose memory a quick run measures, to keep it within seconds."""


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny networks and steps, one round: a smoke test in seconds")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0 keeps torch's default")
    parser.add_argument("--rounds", type=int, help="timed rounds per configuration (the median is reported)")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("MICROGLIA_DATA"),
        help="folder with mnist/ for the epoch timing (default: $MICROGLIA_DATA); without it a quick run "
        "times an epoch of digits and a full run skips the epoch",
    )
    parser.add_argument(
        "--memory-steps",
        type=lambda text: [int(value) for value in text.split(",")],
        help="comma-separated steps T at which to measure peak memory (default: every T timed)",
    )
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--skip-epoch", action="store_true", help="skip the epoch timing")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "docs" / "benchmarks.md", help="report file (Markdown)")
    parser.add_argument("--json", type=Path, default=REPOSITORY / "docs" / "benchmarks.json", help="raw figures (JSON)")
    parser.add_argument(
        "--report-only",
        type=Path,
        metavar="JSON",
        help="measure nothing: write the report (--out) again from the raw figures of an earlier run",
    )
    parser.add_argument("--memory-worker", metavar="SPEC", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_benchmarks(arguments: argparse.Namespace, command: str) -> dict:
    """Run every measurement that `arguments` selects and return the raw figures."""
    settings = dict(QUICK if arguments.quick else FULL)
    if arguments.rounds:
        settings["rounds"] = arguments.rounds
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    versions = import_benchmark_libraries()
    chunk_steps = default_chunk_steps()
    results = {
        "command": command,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine_description(),
        "versions": versions,
        "settings": settings,
        "glial_chunk_steps": chunk_steps,
        "configurations": [],
    }
    batch_size = settings["batch_size"]

    for sizes in settings["networks"]:
        for steps in settings["steps"]:
            logger.info("timing %s, T = %d", "-".join(map(str, sizes)), steps)
            contenders = [build_contender(name, sizes) for name in CONTENDERS]
            x, labels = direct_current_batch(sizes, steps, batch_size)
            train, infer, matmul = time_alternating(
                contenders,
                x,
                labels,
                rounds=settings["rounds"],
                batches=settings["batches"],
                matmul_size=settings["matmul_size"],
            )
            peak = matmul_gflops(matmul, settings["matmul_size"])
            configuration = {
                "sizes": sizes,
                "steps": steps,
                "batch_size": batch_size,
                "matmul_peak_gflops": peak,
                "matmul_seconds": matmul.wall,
                "contenders": {},
            }
            for name in CONTENDERS:
                entry = {
                    "train_samples_per_second": train[name].samples_per_second(batch_size),
                    "infer_samples_per_second": infer[name].samples_per_second(batch_size),
                    "train_seconds": train[name].wall,
                    "train_cpu_seconds": train[name].cpu,
                    "infer_seconds": infer[name].wall,
                    "infer_cpu_seconds": infer[name].cpu,
                }
                if name in GLIAL_CONTENDERS:
                    flops = glial_training_flops(sizes, steps, batch_size, name.removeprefix("glia-"))
                    gflops = flops / statistics.median(train[name].wall) / 1e9
                    entry |= {"train_flops": flops, "train_gflops": gflops, "fraction_of_matmul_peak": gflops / peak}
                configuration["contenders"][name] = entry
            results["configurations"].append(configuration)
            del contenders

    if not arguments.skip_memory:
        results["memory"] = measure_memory(settings, arguments)
    if not arguments.skip_epoch:
        results["epoch"] = measure_epoch(arguments)
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["targets"] = evaluate_targets(results)
    return results


def measure_memory(settings: dict, arguments: argparse.Namespace) -> dict:
    """Measure the peak memory of training configurations, each in a fresh process."""
    names = QUICK_MEMORY_CONTENDERS if arguments.quick else CONTENDERS
    networks = settings["networks"][-1:] if arguments.quick else settings["networks"]
    steps_list = arguments.memory_steps or settings["steps"]
    batches = settings["memory_batches"]
    batch_size = settings["batch_size"]

    baseline = measure_peak_memory(None, networks[0], steps_list[0], batch_size, batches, arguments.threads)
    records = []
    for sizes in networks:
        for steps in steps_list:
            for name in names:
                logger.info("peak memory of %s on %s, T = %d", name, "-".join(map(str, sizes)), steps)
                measured = measure_peak_memory(name, sizes, steps, batch_size, batches, arguments.threads)
                records.append(
                    {
                        "contender": name,
                        "sizes": sizes,
                        "steps": steps,
                        "peak_rss_mib": measured["peak_rss_mib"],
                        "warmed_up_rss_mib": measured["warmed_up_rss_mib"],
                        "above_warm_up_mib": measured["peak_rss_mib"] - measured["warmed_up_rss_mib"],
                        "above_baseline_mib": measured["peak_rss_mib"] - baseline["peak_rss_mib"],
                        "seconds": measured["seconds"],
                    }
                )
    return {"baseline_rss_mib": baseline["peak_rss_mib"], "batches": batches, "records": records}


def measure_epoch(arguments: argparse.Namespace) -> dict | None:
    """Time one epoch: MNIST when a data folder is given, digits in a quick run without one."""
    if arguments.data_dir:
        return time_epoch("mnist", arguments.data_dir)
    if arguments.quick:
        return time_epoch("digits", None)
    logger.warning("no --data-dir and no MICROGLIA_DATA: the MNIST epoch is not timed")
    return None


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.memory_worker:
        print(json.dumps(memory_worker(json.loads(arguments.memory_worker))))
        return 0

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if arguments.report_only:
        results = json.loads(arguments.report_only.read_text())
        results["targets"] = evaluate_targets(results)
        write_report(results, arguments.out)
        logger.info("wrote %s from %s", arguments.out, arguments.report_only)
        return 0

    command = shlex.join(["python", os.path.relpath(__file__, Path.cwd()), *(sys.argv[1:] if argv is None else argv)])
    results = run_benchmarks(arguments, command)

    results["json_name"] = arguments.json.name
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps(results, indent=1) + "\n")
    write_report(results, arguments.out)
    logger.info("wrote %s and %s", arguments.out, arguments.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
