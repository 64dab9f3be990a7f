"""Kill real training runs with SIGKILL at random points, resume them, and compare with a run left alone.

Usage (from the repository root, with the package importable, e.g. PYTHONPATH=src):

    python bench/fault_resume.py                     # 5 kills, digits, about 5 minutes on 2 busy cores
    python bench/fault_resume.py --kills 1 --epochs 1 --hidden 20    # a quick check

Every run is a `python -m microglia.cli train` subprocess with the same settings and seed.
The reference run measures how long training takes (from the moment its config.toml appears
until its summary.json appears). Each trial draws a random minibatch of the run, waits until the
run has written the checkpoint before it, waits a random part of the time between two
checkpoints, and kills the run with SIGKILL. Waiting on checkpoints rather than on the clock
keeps the kill inside training when the machine's load changes. Then it runs `microglia train
--resume` and compares every tensor of the final `weights.safetensors` and of the final
checkpoint (network, rule state, RNG states, best epoch) with the reference, bit for bit. The exit status is 0 when every trial matched.
"""

from __future__ import annotations

import argparse
import math
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from microglia.data import load_dataset
from microglia.training.checkpoint import list_checkpoints, read_checkpoint

BATCH_SIZE = 32
TIMING_KEYS = ("samples_per_second", "epoch_seconds", "seconds", "train_seconds")


MAX_ATTEMPTS = 5
"""Kills drawn per trial before a trial counts as not interrupted."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5, help="trials, each killed once at a random point")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random kill points")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hidden", default="100")
    parser.add_argument("--checkpoint-every", type=int, default=10, help="minibatches between checkpoints")
    parser.add_argument("--workdir", type=Path, help="folder for the runs (default: a new temporary folder)")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="microglia-fault-"))
    options = [
        "--dataset", "digits", "--hidden", args.hidden, "--epochs", str(args.epochs), "--steps", "8",
        "--batch-size", str(BATCH_SIZE), "--lr", "3e-3", "--checkpoint-every", str(args.checkpoint_every), "--quiet",
    ]  # fmt: skip
    print(f"runs in {workdir}; settings: {' '.join(options)}")

    reference = workdir / "reference"
    window = run_to_end(["train", *options, "--out", str(reference)], reference)
    print(f"reference run: {window:.1f} s from its config.toml to its summary.json\n")

    total_batches = args.epochs * math.ceil(len(load_dataset("digits").train) / BATCH_SIZE)
    interval_seconds = window * args.checkpoint_every / total_batches
    generator = random.Random(args.seed)
    rows = []
    for trial in range(1, args.kills + 1):
        # Kill points leave at least one checkpoint interval of training after them. A run that
        # still finished first, because the machine was faster than for the reference run, is drawn again.
        for attempt in range(MAX_ATTEMPTS):
            run_dir = workdir / f"trial-{trial}-{attempt}"
            target = generator.randrange(max(1, total_batches - args.checkpoint_every))
            anchor = target - target % args.checkpoint_every
            delay = generator.uniform(0.0, 1.0) * interval_seconds
            newest = kill_after(["train", *options, "--out", str(run_dir)], run_dir, anchor, delay)
            if not (run_dir / "summary.json").exists():
                break
        else:
            rows.append((trial, delay, newest, f"not interrupted in {MAX_ATTEMPTS} attempts", 0))
            continue
        resumed = subprocess.run(
            [sys.executable, "-m", "microglia.cli", "train", "--resume", str(run_dir), "--quiet"],
            capture_output=True,
            text=True,
        )
        if resumed.returncode != 0:
            rows.append((trial, delay, newest, f"resume failed ({resumed.returncode}): {resumed.stderr.strip()}", 0))
            continue
        differences, compared = compare_runs(reference, run_dir)
        rows.append((trial, delay, newest, "identical" if not differences else "differ: " + ", ".join(differences[:3]), compared))

    print(f"{total_batches} minibatches in the run; kill points: a random minibatch's checkpoint, then a delay")
    print("| trial | delay after the checkpoint (s) | newest checkpoint at the kill | final tensors | tensors compared |")
    print("| --- | --- | --- | --- | --- |")
    for trial, delay, newest, verdict, compared in rows:
        print(f"| {trial} | {delay:.2f} | {newest} | {verdict} | {compared} |")
    matched = sum(1 for row in rows if row[3] == "identical")
    print(f"\n{matched} of {len(rows)} killed and resumed runs ended bit-identical to the run left alone")
    return 0 if matched == len(rows) else 1


def run_to_end(arguments: list[str], run_dir: Path) -> float:
    """Run the CLI to its end; return the seconds from its config.toml to its summary.json."""
    process = subprocess.Popen(
        [sys.executable, "-m", "microglia.cli", *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    started = wait_for_start(process, run_dir)
    finished = None
    while process.poll() is None:
        if finished is None and (run_dir / "summary.json").exists():
            finished = time.monotonic()
        time.sleep(0.01)
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the reference run failed:\n{stderr}")
    return (finished or time.monotonic()) - started


def kill_after(arguments: list[str], run_dir: Path, anchor: int, delay: float) -> str:
    """Start the CLI, SIGKILL it `delay` s after its checkpoint at minibatch `anchor`; return the newest checkpoint."""
    process = subprocess.Popen(
        [sys.executable, "-m", "microglia.cli", *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_start(process, run_dir)
    while process.poll() is None and checkpoint_number(run_dir) < anchor:
        time.sleep(0.005)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if (run_dir / "summary.json").exists():
        return "none: the run had finished"
    checkpoints = list_checkpoints(run_dir)
    return checkpoints[0].name if checkpoints else "none"


def checkpoint_number(run_dir: Path) -> int:
    """Return the minibatch count of the newest checkpoint, -1 if there is none."""
    checkpoints = list_checkpoints(run_dir)
    return int(checkpoints[0].stem.removeprefix("batch-")) if checkpoints else -1


def wait_for_start(process: subprocess.Popen, run_dir: Path) -> float:
    while not (run_dir / "config.toml").exists():
        if process.poll() is not None:
            raise SystemExit(f"the run exited with status {process.returncode} before it started")
        time.sleep(0.01)
    return time.monotonic()


def compare_runs(reference: Path, other: Path) -> tuple[list[str], int]:
    """Return the names of tensors that differ, and how many tensors were compared."""
    differences, compared = [], 0
    left, right = load_file(reference / "weights.safetensors"), load_file(other / "weights.safetensors")
    if list(left) != list(right):
        differences.append("weights.safetensors tensor names")
    for name in left:
        compared += 1
        if name not in right or not torch.equal(left[name], right[name]):
            differences.append(f"weights/{name}")

    left_state = read_checkpoint(list_checkpoints(reference)[0])
    right_state = read_checkpoint(list_checkpoints(other)[0])
    compared += compare_values(left_state, right_state, "checkpoint", differences)
    return differences, compared


def compare_values(left, right, path: str, differences: list[str]) -> int:
    """Compare nested checkpoint state, skipping wall-clock timings; return the tensors compared."""
    if isinstance(left, torch.Tensor):
        if not isinstance(right, torch.Tensor) or left.dtype != right.dtype or not torch.equal(left, right):
            differences.append(path)
        return 1
    if isinstance(left, dict):
        if not isinstance(right, dict) or set(left) != set(right):
            differences.append(path)
            return 0
        return sum(
            compare_values(left[key], right[key], f"{path}/{key}", differences)
            for key in left
            if key not in TIMING_KEYS
        )
    if isinstance(left, (list, tuple)):
        if not isinstance(right, (list, tuple)) or len(left) != len(right):
            differences.append(path)
            return 0
        return sum(compare_values(a, b, f"{path}/{i}", differences) for i, (a, b) in enumerate(zip(left, right)))
    if left != right and not (left != left and right != right):  # NaN equals NaN here
        differences.append(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
