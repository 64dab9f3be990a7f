"""Try bad inputs through the `microglia` command line and check that each fails cleanly.

Usage (from the repository root, with the package importable, e.g. PYTHONPATH=src):

    python bench/bad_inputs.py                 # every case, about 5 minutes on 2 loaded cores
    python bench/bad_inputs.py --only unknown-option,nan-in-arrays

Each case runs `python -m microglia.cli ...` in a subprocess inside a scratch folder and
passes when:

- the exit status is 2,
- stderr contains an `error:` line and no Python traceback,
- no file is left half-written: no temporary `.tmp` file remains, every file that existed
  before is unchanged, and every new file is complete (safetensors, TOML and JSON files parse).

Real MNIST files make the damaged-IDX cases name the damaged file: they are read from
`--mnist DIR` (default: `$MICROGLIA_DATA/mnist`); without them those cases are skipped.
The exit status is 0 when every case passed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from microglia.errors import CheckpointError
from microglia.network import SpikingMLP
from microglia.training.checkpoint import list_checkpoints, parse_safetensors
from microglia.training.config import tomllib
from microglia.training.files import atomic_save_tensors

TINY = ["--hidden", "20", "--epochs", "1", "--steps", "6", "--batch-size", "64", "--quiet"]
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def build_cases(scratch: Path, run: Path, mnist: Path | None) -> list[tuple[str, list[str]]]:
    """Create the bad files in `scratch` and return (name, CLI arguments) per case."""
    out = ["--out", str(scratch / "new-run")]
    cases = [
        ("unknown-option", ["train", "--learning-rate", "0.1"]),
        ("bad-integer", ["train", "--epochs", "three"]),
        ("bad-float", ["train", "--lr", "fast"]),
        ("bad-layer-widths", ["train", "--hidden", "100,x"]),
        ("unknown-command", ["fit"]),
        ("negative-lr", ["train", "--lr", "-1", *out]),
        ("beta-out-of-range", ["train", "--beta", "1.5", *out]),
        ("burn-in-not-below-steps", ["train", "--steps", "6", "--burn-in", "6", *out]),
        ("unknown-feedback", ["train", "--feedback", "mirror", *out]),
        ("unknown-dataset", ["train", "--dataset", "cifar", *out]),
    ]

    # configuration files
    (scratch / "broken.toml").write_text("lr = \n")
    (scratch / "unknown-key.toml").write_text('dataset = "digits"\nlearning_rate = 0.1\n')
    (scratch / "wrong-type.toml").write_text('hidden = "wide"\n')
    cases += [
        ("config-missing", ["train", "--config", str(scratch / "none.toml"), *out]),
        ("config-invalid-toml", ["train", "--config", str(scratch / "broken.toml"), *out]),
        ("config-unknown-key", ["train", "--config", str(scratch / "unknown-key.toml"), *out]),
        ("config-wrong-type", ["train", "--config", str(scratch / "wrong-type.toml"), *out]),
    ]

    # data files
    (scratch / "empty-data").mkdir()
    cases.append(("mnist-files-missing", ["train", "--dataset", "mnist", "--data-dir", str(scratch / "empty-data"), *out]))
    if mnist is not None:
        for name, damage in (("truncated", _truncate), ("corrupted", _corrupt), ("wrong-magic", _wrong_magic)):
            folder = scratch / f"mnist-{name}" / "mnist"
            folder.mkdir(parents=True)
            for file_name in MNIST_FILES:
                os.symlink(mnist / file_name, folder / file_name)
            damaged = folder / "t10k-labels-idx1-ubyte.gz"
            damaged.unlink()
            damaged.write_bytes(damage((mnist / "t10k-labels-idx1-ubyte.gz").read_bytes()))
            cases.append((f"mnist-{name}", ["train", "--dataset", "mnist", "--data-dir", str(folder.parent), *out]))

    rng = np.random.default_rng(0)
    images = rng.random((40, 6)).astype(np.float32)
    labels = np.arange(40) % 3
    np.savez(scratch / "count-mismatch.npz", x_train=images, y_train=labels[:39], x_test=images[:10], y_test=labels[:10])
    with_nan = images.copy()
    with_nan[7, 2] = np.nan
    np.savez(scratch / "nan.npz", x_train=with_nan, y_train=labels, x_test=images[:10], y_test=labels[:10])
    with_inf = images.copy()
    with_inf[3, 1] = np.inf
    np.savez(scratch / "inf.npz", x_train=images, y_train=labels, x_test=with_inf[:10], y_test=labels[:10])
    np.savez(scratch / "missing-key.npz", x_train=images, y_train=labels, x_test=images[:10])
    (scratch / "not-a-zip.npz").write_text("x_train,y_train\n")
    for name in ("count-mismatch", "nan", "inf", "missing-key", "not-a-zip"):
        cases.append((f"arrays-{name}", ["train", "--dataset", "arrays", "--data-dir", str(scratch / f"{name}.npz"), *out]))

    # weights and checkpoints
    weights = run / "weights.safetensors"
    (scratch / "truncated.safetensors").write_bytes(weights.read_bytes()[:-100])
    atomic_save_tensors(
        scratch / "other-shape.safetensors", SpikingMLP([64, 30, 10]).state_dict(), metadata={"format": "microglia.SpikingMLP"}
    )
    torch.save(SpikingMLP([64, 20, 10]).state_dict(), scratch / "pickled.pt")
    (scratch / "notes.safetensors").write_text("not tensors\n")
    cases += [
        ("evaluate-missing-run", ["evaluate", str(scratch / "no-run")]),
        ("weights-truncated", ["evaluate", str(run), "--weights", str(scratch / "truncated.safetensors")]),
        ("weights-other-shape", ["evaluate", str(run), "--weights", str(scratch / "other-shape.safetensors")]),
        ("weights-pickle-file", ["evaluate", str(run), "--weights", str(scratch / "pickled.pt")]),
        ("weights-text-file", ["report", str(run), "--weights", str(scratch / "notes.safetensors")]),
    ]

    damaged_run = scratch / "damaged-run"
    shutil.copytree(run, damaged_run)
    (damaged_run / "summary.json").unlink()
    (damaged_run / "weights.safetensors").unlink()
    for checkpoint in list_checkpoints(damaged_run):
        checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 3])
    cases += [
        ("resume-damaged-checkpoints", ["train", "--resume", str(damaged_run)]),
        ("resume-finished-run", ["train", "--resume", str(run)]),
        ("resume-with-changed-lr", ["train", "--resume", str(damaged_run), "--lr", "0.1"]),
        ("resume-not-a-run", ["train", "--resume", str(scratch / "empty-data")]),
        ("out-holds-a-run", ["train", *TINY, "--out", str(run)]),
        ("out-below-a-file", ["train", *TINY, "--out", str(scratch / "notes.safetensors" / "run")]),
        ("training-diverges", ["train", *TINY, "--lr", "1e38", "--consolidation", "sgd", "--schedule", "constant",
                               "--out", str(scratch / "diverged")]),
    ]  # fmt: skip
    return cases


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _corrupt(data: bytes) -> bytes:
    damaged = bytearray(data)
    middle = len(damaged) // 2
    damaged[middle : middle + 16] = bytes(16)
    return bytes(damaged)


def _wrong_magic(data: bytes) -> bytes:
    return gzip.compress(b"\x00\x00\x08\x07" + gzip.decompress(data)[4:])


def snapshot(folder: Path) -> dict[Path, str]:
    """Return the SHA-256 of every regular file under `folder` (symlinks skipped)."""
    return {
        path: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


def incomplete_files(paths: list[Path]) -> list[str]:
    """Return the new files that do not parse as the format their suffix names."""
    problems = []
    for path in paths:
        try:
            if path.suffix == ".safetensors":
                parse_safetensors(path.read_bytes(), path)
            elif path.suffix == ".toml":
                tomllib.loads(path.read_text())
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".jsonl":
                for line in path.read_text().splitlines():
                    json.loads(line)
        except (CheckpointError, ValueError) as error:
            problems.append(f"{path.name}: {error}")
    return problems


def run_case(name: str, arguments: list[str], scratch: Path) -> dict:
    before = snapshot(scratch)
    result = subprocess.run([sys.executable, "-m", "microglia.cli", *arguments], capture_output=True, text=True)
    after = snapshot(scratch)

    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    changed = [path.name for path in before if after.get(path) != before[path]]
    new = [path for path in after if path not in before]
    temporary = [path.name for path in new if path.suffix == ".tmp"]
    broken = incomplete_files([path for path in new if path.suffix != ".tmp"])
    problems = []
    if result.returncode != 2:
        problems.append(f"exit status {result.returncode}")
    if not error_lines:
        problems.append("no error: line")
    if "Traceback" in result.stderr:
        problems.append("traceback")
    if changed:
        problems.append(f"changed {changed}")
    if temporary or broken:
        problems.append(f"half-written {temporary + broken}")
    return {
        "name": name,
        "status": result.returncode,
        "message": error_lines[-1].strip() if error_lines else result.stderr.strip()[-200:],
        "new_files": len(new),
        "problems": problems,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated case names to run (default: all)")
    parser.add_argument("--mnist", type=Path, help="folder with the four official MNIST files")
    args = parser.parse_args()

    mnist = args.mnist
    if mnist is None and os.environ.get("MICROGLIA_DATA"):
        mnist = Path(os.environ["MICROGLIA_DATA"]) / "mnist"
    if mnist is not None and not all((mnist / name).is_file() for name in MNIST_FILES):
        print(f"no MNIST files in {mnist}; the damaged-IDX cases are skipped")
        mnist = None

    with tempfile.TemporaryDirectory(prefix="microglia-bad-inputs-") as folder:
        scratch = Path(folder)
        run = scratch / "finished-run"
        setup = subprocess.run(
            [sys.executable, "-m", "microglia.cli", "train", *TINY, "--out", str(run)], capture_output=True, text=True
        )
        if setup.returncode != 0:
            raise SystemExit(f"the run used by the weights cases failed:\n{setup.stderr}")
        cases = build_cases(scratch, run, mnist)
        if args.only:
            wanted = set(args.only.split(","))
            cases = [case for case in cases if case[0] in wanted]
            if missing := wanted - {name for name, _ in cases}:
                raise SystemExit(f"unknown case(s): {', '.join(sorted(missing))}")

        # one at a time, because each case compares snapshots of the whole scratch folder
        results = [run_case(name, arguments, scratch) for name, arguments in cases]

    print("| case | exit | new files | error message | verdict |")
    print("| --- | --- | --- | --- | --- |")
    for result in results:
        verdict = "pass" if not result["problems"] else "FAIL: " + "; ".join(result["problems"])
        message = result["message"].replace("|", "\\|").replace(str(scratch), "…")
        if len(message) > 140:
            message = message[:137] + "..."
        print(f"| {result['name']} | {result['status']} | {result['new_files']} | {message} | {verdict} |")
    passed = sum(1 for result in results if not result["problems"])
    print(f"\n{passed} of {len(results)} bad inputs gave a clear error, exit status 2, no traceback and no half-written file")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
