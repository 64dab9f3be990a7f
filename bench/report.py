"""The benchmark's targets and its Markdown report."""

from __future__ import annotations

from pathlib import Path

from bench.contenders import CONTENDERS, GLIAL_CONTENDERS

HEADLINE_STEPS = 25
"""Steps of the configuration that the speed and matrix-product targets are about."""
EPOCH_SECONDS_TARGET = 30.0


def _network_name(sizes: list[int]) -> str:
    return "-".join(str(size) for size in sizes)


def _headline(results: dict) -> dict:
    """Return the configuration of the deepest network at T = 25, or at its largest T when 25 was not run."""
    sizes = results["settings"]["networks"][-1]
    candidates = [c for c in results["configurations"] if c["sizes"] == sizes]
    for configuration in candidates:
        if configuration["steps"] == HEADLINE_STEPS:
            return configuration
    return max(candidates, key=lambda c: c["steps"])


def _target(name: str, measured: float | None, threshold: float, at_least: bool, detail: str) -> dict:
    met = None
    if measured is not None and at_least:
        met = measured >= threshold
    elif measured is not None:
        met = measured <= threshold
    return {
        "target": name,
        "measured": measured,
        "threshold": threshold,
        "comparison": ">=" if at_least else "<=",
        "met": met,
        "detail": detail,
    }


def evaluate_targets(results: dict) -> list[dict]:
    """Compare the measured figures with the targets; `met` is None where a figure is missing."""
    headline = _headline(results)
    where = f"{_network_name(headline['sizes'])}, T = {headline['steps']}"
    speeds = {name: entry["train_samples_per_second"] for name, entry in headline["contenders"].items()}
    targets = [
        _target(
            "glia-sign training / snntorch-bptt (tutorial)",
            speeds["glia-sign"] / speeds["snntorch-bptt"],
            2.0,
            True,
            where,
        ),
        _target(
            "glia-sign training / snntorch-bptt-hoisted",
            speeds["glia-sign"] / speeds["snntorch-bptt-hoisted"],
            1.2,
            True,
            where,
        ),
    ]

    memory = results.get("memory")
    flat, below = None, None
    steps = sorted({record["steps"] for record in memory["records"]}) if memory else results["settings"]["steps"]
    memory_where = f"{_network_name(headline['sizes'])}, T = {steps[-1]} vs T = {steps[0]}, above the warm-up"
    if memory:
        peaks = {
            (record["contender"], record["steps"]): record["above_warm_up_mib"]
            for record in memory["records"]
            if record["sizes"] == headline["sizes"]
        }
        glia_short, glia_long = peaks.get(("glia-sign", steps[0])), peaks.get(("glia-sign", steps[-1]))
        snntorch_long = peaks.get(("snntorch-bptt", steps[-1]))
        # a growth of zero (tiny networks) gives no ratio
        if glia_short is not None and glia_long is not None and glia_short > 0 and steps[-1] != steps[0]:
            flat = glia_long / glia_short
        if glia_long is not None and snntorch_long is not None and glia_long > 0:
            below = snntorch_long / glia_long
    targets.append(_target("glia-sign peak memory, long T / short T", flat, 1.2, False, memory_where))
    targets.append(
        _target(
            "snntorch-bptt peak memory / glia-sign peak memory",
            below,
            5.0,
            True,
            f"{_network_name(headline['sizes'])}, T = {steps[-1]}, above the warm-up",
        )
    )
    targets.append(
        _target(
            "glia-sign training rate / matrix-product peak",
            headline["contenders"]["glia-sign"]["fraction_of_matmul_peak"],
            0.5,
            True,
            where,
        )
    )

    epoch = results.get("epoch")
    seconds = epoch["train_seconds"] if epoch and epoch["dataset"] == "mnist" else None
    targets.append(_target("one MNIST training epoch, seconds", seconds, EPOCH_SECONDS_TARGET, False, "default MNIST configuration"))
    return targets


def _format(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _contender_table(results: dict, sizes: list[int], key: str, digits: int = 0) -> list[str]:
    configurations = [c for c in results["configurations"] if c["sizes"] == sizes]
    lines = [
        "| contender | " + " | ".join(f"T = {c['steps']}" for c in configurations) + " |",
        "| --- |" + " ---: |" * len(configurations),
    ]
    for name in CONTENDERS:
        cells = [_format(c["contenders"][name][key], digits) for c in configurations]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _memory_table(results: dict, sizes: list[int]) -> list[str]:
    records = [r for r in results["memory"]["records"] if r["sizes"] == sizes]
    if not records:
        return []
    steps = sorted({r["steps"] for r in records})
    names = [name for name in CONTENDERS if any(r["contender"] == name for r in records)]
    lines = [
        "| contender | " + " | ".join(f"T = {t}" for t in steps) + " |",
        "| --- |" + " ---: |" * len(steps),
    ]
    for name in names:
        cells = []
        for t in steps:
            match = [r for r in records if r["contender"] == name and r["steps"] == t]
            cells.append(
                f"{match[0]['above_warm_up_mib']:,.0f} ({match[0]['peak_rss_mib']:,.0f})" if match else "n/a"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _rate_table(results: dict, sizes: list[int]) -> list[str]:
    configurations = [c for c in results["configurations"] if c["sizes"] == sizes]
    lines = [
        "| | " + " | ".join(f"T = {c['steps']}" for c in configurations) + " |",
        "| --- |" + " ---: |" * len(configurations),
        "| matrix-product peak, GFLOP/s | "
        + " | ".join(_format(c["matmul_peak_gflops"]) for c in configurations)
        + " |",
    ]
    for name in GLIAL_CONTENDERS:
        cells = [
            f"{c['contenders'][name]['train_gflops']:.1f} ({100 * c['contenders'][name]['fraction_of_matmul_peak']:.0f}%)"
            for c in configurations
        ]
        lines.append(f"| {name}, GFLOP/s | " + " | ".join(cells) + " |")
    return lines


def write_report(results: dict, path: Path) -> None:
    """Write the Markdown report of `results` to `path`."""
    machine = results["machine"]
    settings = results["settings"]
    lines = [
        "# Benchmarks",
        "",
        "Glial learning against surrogate-gradient BPTT in microglia, snnTorch and Norse, on one",
        "machine in one run. The contenders are timed round by round in rotating order and each",
        "figure is the median over the rounds, so slow drifts of a shared machine act on all of",
        "them alike: compare ratios within this page, not absolute figures across machines.",
        "",
        "Produced by:",
        "",
        "```sh",
        results["command"],
        "```",
        "",
        f"Started {results['started']}. Raw figures, every round included: `{Path(results.get('json_name', 'benchmarks.json')).name}`.",
        "",
        "## Machine and versions",
        "",
        f"- CPU: {machine['cpu_model']}, {machine['logical_cores']} logical cores; torch intra-op threads: {machine['torch_threads']}",
        f"- load average (1, 5, 15 min) at start {_loads(machine['load_average_at_start'])}, "
        f"at end {_loads(machine.get('load_average_at_end'))}",
        f"- Python {machine['python']} on {machine['platform']}",
        "- " + ", ".join(f"{name} {version}" for name, version in results["versions"].items()),
        "",
        "## Targets",
        "",
        "| target | measured | required | met | where |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for target in results["targets"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[target["met"]]
        lines.append(
            f"| {target['target']} | {_format(target['measured'], 2)} | {target['comparison']} {target['threshold']:g} "
            f"| {met} | {target['detail']} |"
        )

    load = machine["load_average_at_start"][0]
    if load > machine["logical_cores"]:
        lines += [
            "",
            f"The machine was shared during this run: its load average ({load:.1f} at the start) exceeded",
            f"its {machine['logical_cores']} cores, so every contender ran slower than it would on an idle",
            "machine. The alternating rounds keep the ratios comparable; the absolute figures are not.",
        ]

    lines += [
        "",
        "## Setup",
        "",
        f"Direct-current input (each pixel a constant current at every step), batch {settings['batch_size']},",
        "LIF hidden neurons with beta 0.9, threshold 1 and reset by subtraction, a leaky readout",
        "with decay 0.9, the fast-sigmoid pseudo-derivative `1 / (1 + 10 |v - 1|)^2` in every",
        "library, cross-entropy of the readout averaged over all steps (no burn-in), Adam with",
        f"lr 1e-3. Glial learning consolidates after every minibatch and processes chunks of",
        f"{results['glial_chunk_steps']} steps. Each timed round runs {settings['batches']} minibatch(es) per",
        f"contender; {settings['rounds']} rounds follow one untimed warm-up round.",
        "",
        "- `glia-<kind>`: microglia's glial learning with that feedback pathway (no autograd).",
        "- `microglia-bptt`: microglia's own surrogate-gradient BPTT on the same network.",
        "- `snntorch-bptt`: `snntorch.Leaky` neurons in a Python time loop, every `nn.Linear`",
        "  applied at every step, as snnTorch's tutorials write it.",
        "- `snntorch-bptt-hoisted`: the same, with the first layer's constant current computed",
        "  once before the loop.",
        "- `norse-bptt`: Norse's `LIFBoxCell` and `LIBoxCell` in a Python time loop",
        "  (`dt / tau_mem = 0.1`, so the decay is 0.9; reset by subtraction; SuperSpike with",
        "  alpha 10, which is the same fast sigmoid).",
    ]

    for sizes in settings["networks"]:
        name = _network_name(sizes)
        lines += ["", f"## {name}", "", "Training throughput, samples/s:", ""]
        lines += _contender_table(results, sizes, "train_samples_per_second")
        lines += ["", "Inference throughput (no gradients), samples/s:", ""]
        lines += _contender_table(results, sizes, "infer_samples_per_second")
        lines += [
            "",
            "Glial training rate: matrix-product operations counted analytically (bench/flops.py)",
            "over the median time per minibatch, against the rate of a large float32 `torch.mm`",
            "timed in the same rounds:",
            "",
        ]
        lines += _rate_table(results, sizes)
        if results.get("memory"):
            table = _memory_table(results, sizes)
            if table:
                lines += [
                    "",
                    "Peak resident memory of training, in MiB: the growth of the resident high-water",
                    "mark while training the configuration, after the same process has trained a",
                    "network of the same depth with 2 neurons per layer (which loads every library",
                    "and code path), and in brackets the process's whole peak. Each figure comes from",
                    f"a fresh process that trains {results['memory']['batches']} minibatch(es). A process that only",
                    f"imports torch, microglia, snnTorch and Norse peaks at {results['memory']['baseline_rss_mib']:,.0f} MiB.",
                    "",
                ]
                lines += table

    epoch = results.get("epoch")
    lines += ["", "## One training epoch", ""]
    if epoch:
        lines += [
            f"{epoch['dataset']} with {epoch['configuration']}, through `microglia.training.Trainer`:",
            f"{epoch['train_seconds']:.1f} s for the training minibatches ({epoch['samples_per_second']:,.0f} samples/s),",
            f"{epoch['run_seconds']:.1f} s for the whole run with data loading, validation and the test.",
            f"Validation accuracy after the epoch {_percent(epoch['validation_accuracy'])}, test accuracy",
            f"{_percent(epoch['test_accuracy'])}.",
        ]
    else:
        lines.append("Not measured in this run (no data folder given).")

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _loads(loads: list[float] | None) -> str:
    return "n/a" if loads is None else ", ".join(f"{load:.1f}" for load in loads)


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.2f}%"
