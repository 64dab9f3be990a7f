"""The benchmark suite: a tiny run of the whole command, the FLOP count, the contenders' network."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from bench.contenders import CONTENDERS, SnnTorchNetwork, build_contender  # noqa: E402
from bench import measure as measure_module  # noqa: E402
from bench.flops import glial_training_flops  # noqa: E402
from bench.run import main as run_benchmark_command  # noqa: E402
from microglia.network import SpikingMLP  # noqa: E402
from microglia.neurons import Surrogate  # noqa: E402


def test_glial_flops_counted_by_hand():
    # sizes 3-4-5-2, T = 2, B = 1, input not constant, no burn-in
    # forward 2*2*(3*4 + 4*5 + 5*2) = 168; updates (48+16) + (80+20) + (40+8) = 212
    # sign feedback 2*2*(5*4 + 2*5) = 120; direct feedback 2*2*2*(4 + 5) = 72
    sign = glial_training_flops([3, 4, 5, 2], 2, 1, "sign", constant_input=False)
    direct = glial_training_flops([3, 4, 5, 2], 2, 1, "direct", constant_input=False)
    assert sign == 168 + 212 + 120
    assert direct == 168 + 212 + 72


def test_glial_flops_constant_input_and_burn_in():
    # sizes 3-4-2, T = 3, B = 2, burn-in 1 (2 scored steps), direct current input
    # forward 2*2*3*4 + 2*3*2*4*2 = 144; first-layer update 2*2*2*4 + 2*2*4*3 = 80
    # readout update 2*2*2*2*4 + 2*2*2 = 72; feedback 2*2*2*2*4 = 64
    assert glial_training_flops([3, 4, 2], 3, 2, "exact", burn_in=1) == 144 + 80 + 72 + 64


def test_snntorch_network_matches_microglia_forward():
    torch.manual_seed(0)
    network = SpikingMLP([6, 9, 7, 3], surrogate=Surrogate.FAST_SIGMOID)
    twin = SnnTorchNetwork([6, 9, 7, 3])
    with torch.no_grad():
        for linear, layer in zip(twin.linears, network.synaptic_layers):
            linear.weight.copy_(layer.weight)
            linear.bias.copy_(torch.rand_like(layer.bias) * 0.2)
            layer.bias.copy_(linear.bias)
        x = torch.rand(8, 4, 6) * 2
        expected = network(x)
        readout = twin(x)
    torch.testing.assert_close(readout, expected, rtol=1e-5, atol=1e-5)
    assert expected.abs().sum() > 0


def test_unknown_contender_is_rejected():
    with pytest.raises(ValueError, match="unknown contender 'glia-telepathy'; expected one of glia-exact"):
        build_contender("glia-telepathy", [2, 2, 2])


def test_quick_benchmark_writes_report_and_figures(tmp_path):
    report, figures = tmp_path / "benchmarks.md", tmp_path / "benchmarks.json"
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY / "src"), environment.get("PYTHONPATH", "")])
    environment.pop("MICROGLIA_DATA", None)
    command = [
        sys.executable,
        str(REPOSITORY / "bench" / "run.py"),
        "--quick",
        "--threads",
        "1",
        "--memory-steps",
        "6",
        "--out",
        str(report),
        "--json",
        str(figures),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]

    results = json.loads(figures.read_text())
    assert len(results["configurations"]) == 4, "two networks times two step counts"
    for configuration in results["configurations"]:
        assert configuration["matmul_peak_gflops"] > 0
        assert set(configuration["contenders"]) == set(CONTENDERS)
        for name, entry in configuration["contenders"].items():
            assert entry["train_samples_per_second"] > 0, name
            assert entry["infer_samples_per_second"] > 0, name
        assert configuration["contenders"]["glia-sign"]["train_flops"] > 0

    records = results["memory"]["records"]
    assert {record["contender"] for record in records} == {"glia-sign", "snntorch-bptt"}
    for record in records:
        assert record["peak_rss_mib"] >= record["warmed_up_rss_mib"] > 0

    assert results["epoch"]["dataset"] == "digits"
    assert results["epoch"]["train_seconds"] > 0
    assert len(results["targets"]) == 6
    assert results["targets"][-1]["met"] is None, "no MNIST epoch in a quick run"

    text = report.read_text()
    assert "## Targets" in text
    assert "--quick --threads 1" in text
    assert "| glia-sign |" in text
    assert "- CPU: " in text

    # the report can be written again from the raw figures alone
    again = tmp_path / "again.md"
    assert run_benchmark_command(["--report-only", str(figures), "--out", str(again)]) == 0
    assert again.read_text() == text


def test_memory_worker_ignores_parent_peak():
    # Linux carries ru_maxrss across fork and exec, so a large parent must not leak into the figure
    ballast = torch.ones(512 * 2**20 // 4)
    parent_peak = measure_module._peak_rss_mib()
    result = measure_module.measure_peak_memory(None, [4, 3, 2], 2, 2, batches=1, threads=1)
    assert result["peak_rss_mib"] < parent_peak - 300, (result, parent_peak)
    assert ballast.sum() > 0
