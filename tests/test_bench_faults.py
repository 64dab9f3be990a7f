"""The fault and bad-input scripts in bench/ run at a tiny size, so they cannot rot unnoticed."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(*arguments: str) -> subprocess.CompletedProcess:
    environment = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    environment.pop("MICROGLIA_DATA", None)
    return subprocess.run(
        [sys.executable, *arguments], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )


def test_fault_resume_script(tmp_path):
    # one kill at a random point of a one-epoch run
    result = run_script(
        "bench/fault_resume.py", "--kills", "1", "--epochs", "1", "--hidden", "20", "--seed", "1",
        "--workdir", str(tmp_path),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "| 1 | " in result.stdout
    assert "| identical |" in result.stdout
    assert "1 of 1 killed and resumed runs ended bit-identical" in result.stdout


def test_bad_inputs_script():
    result = run_script("bench/bad_inputs.py", "--only", "unknown-option,arrays-nan,weights-other-shape")

    assert result.returncode == 0, result.stdout + result.stderr
    for case in ("unknown-option", "arrays-nan", "weights-other-shape"):
        assert f"| {case} | 2 |" in result.stdout
    assert "3 of 3 bad inputs gave a clear error" in result.stdout
