"""Measurements: alternating throughput rounds, the matrix-product peak, peak memory in fresh processes."""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.contenders import Contender, build_contender, import_benchmark_libraries
from microglia.encoding import DirectCurrent

logger = logging.getLogger(__name__)

RUN_SCRIPT = Path(__file__).resolve().parent / "run.py"


@dataclass
class Timings:
    """Seconds per minibatch of one contender and one task, one entry per round."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    """Processor time of this process (all its threads) per minibatch."""

    def samples_per_second(self, batch_size: int) -> float:
        """Return `batch_size` over the median wall time per minibatch."""
        return batch_size / statistics.median(self.wall)


def machine_description() -> dict:
    """Describe the machine: processor model, logical cores, torch threads, load."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def direct_current_batch(sizes: list[int], steps: int, batch_size: int, seed: int = 0):
    """Return a direct-current input `[T, B, F]` (stride-0 view) and labels `[B]`."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, sizes[0], generator=generator)
    labels = torch.randint(0, sizes[-1], (batch_size,), generator=generator)
    return DirectCurrent(steps)(images), labels


def _time_call(call, batches: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        call()
    return (time.perf_counter() - wall) / batches, (time.process_time() - cpu) / batches


def time_alternating(
    contenders: list[Contender],
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    rounds: int,
    batches: int,
    matmul_size: int,
) -> tuple[dict[str, Timings], dict[str, Timings], Timings]:
    """Time training and inference of every contender, alternating them round by round.

    Each round times `batches` training minibatches and as many inference minibatches of
    every contender, and one large matrix product. The order of the contenders rotates
    from round to round, so slow drifts of a shared machine hit all of them alike. One
    untimed warm-up round runs first.

    Returns:
        Training timings and inference timings per contender name, and the timings of the
        `[matmul_size, matmul_size]` matrix product.
    """
    train = {contender.name: Timings() for contender in contenders}
    infer = {contender.name: Timings() for contender in contenders}
    matmul = Timings()
    a = torch.rand(matmul_size, matmul_size)
    b = torch.rand(matmul_size, matmul_size)

    for contender in contenders:
        contender.train_batch(x, labels)
        contender.infer(x)
    torch.mm(a, b)

    for round_index in range(rounds):
        shift = round_index % len(contenders)
        order = contenders[shift:] + contenders[:shift]
        for contender in order:
            wall, cpu = _time_call(lambda: contender.train_batch(x, labels), batches)
            train[contender.name].wall.append(wall)
            train[contender.name].cpu.append(cpu)
            wall, cpu = _time_call(lambda: contender.infer(x), batches)
            infer[contender.name].wall.append(wall)
            infer[contender.name].cpu.append(cpu)
        wall, cpu = _time_call(lambda: torch.mm(a, b), 1)
        matmul.wall.append(wall)
        matmul.cpu.append(cpu)
    return train, infer, matmul


def matmul_gflops(timings: Timings, size: int) -> float:
    """Return the float32 rate of a `[size, size]` matrix product, in GFLOP/s, from its median time."""
    return 2 * size**3 / statistics.median(timings.wall) / 1e9


def measure_peak_memory(
    contender: str | None, sizes: list[int], steps: int, batch_size: int, batches: int, threads: int
) -> dict:
    """Train `contender` for `batches` minibatches in a fresh Python process; return its peak memory.

    `contender` None measures the baseline: a process that imports torch, microglia,
    snnTorch and Norse and builds the same input, but no network. Returns the worker's
    figures (see `memory_worker`) and the process's wall time in `seconds`.
    """
    spec = {
        "contender": contender,
        "sizes": sizes,
        "steps": steps,
        "batch_size": batch_size,
        "batches": batches,
        "threads": threads,
    }
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(RUN_SCRIPT), "--memory-worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"memory measurement of {contender or 'the baseline'} failed with exit code "
            f"{completed.returncode}: {completed.stderr.strip()[-2000:]}"
        )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["seconds"] = time.perf_counter() - start
    return result


def memory_worker(spec: dict) -> dict:
    """Run one memory measurement in this (fresh) process; see `measure_peak_memory`.

    The contender first trains a tiny network of the same depth (2 neurons per layer,
    2 steps, 2 samples) for as many minibatches, which loads every library and code path
    it uses. `warmed_up_rss_mib` is the peak after that, and `peak_rss_mib` the peak after
    training the real configuration. Their difference is the memory that the network, its
    state and the minibatch take.
    """
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    if spec["contender"] is None:
        import_benchmark_libraries()
    x, labels = direct_current_batch(spec["sizes"], spec["steps"], spec["batch_size"])
    result = {}

    if spec["contender"] is not None:
        tiny_sizes = [2] * len(spec["sizes"])
        tiny_x, tiny_labels = direct_current_batch(tiny_sizes, 2, 2)
        tiny = build_contender(spec["contender"], tiny_sizes)
        for _ in range(spec["batches"]):
            tiny.train_batch(tiny_x, tiny_labels)
        del tiny
        result["warmed_up_rss_mib"] = _peak_rss_mib()

        contender = build_contender(spec["contender"], spec["sizes"])
        for _ in range(spec["batches"]):
            contender.train_batch(x, labels)

    result["peak_rss_mib"] = _peak_rss_mib()
    return result


def _peak_rss_mib() -> float:
    """Return the resident high-water mark of this process, in MiB.

    Linux keeps `ru_maxrss` across fork and exec, so a worker started by a large parent
    would report the parent's peak. `VmHWM` belongs to the process's own address space.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    # NOTE: without /proc (not Linux), ru_maxrss may include the parent's peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
