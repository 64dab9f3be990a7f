"""A run's report: PNG figures drawn with matplotlib's Agg canvas and one Markdown page showing them.

Figures, written to `RUN/report/`:

- `learning_curves.png`: training and validation loss and accuracy per epoch.
- `spike_raster.png`: the spikes of every hidden layer for the first test sample.
- `firing_rates.png`: histogram of each hidden neuron's firing rate on the test split.
- `weights.png`: histogram of the present synapses' weights, per synaptic layer.
- `density.png`: fraction of synapses present in each layer, per epoch.

An `ann` run's ReLU MLP has no spikes and no synapse masks: its report has the learning curves
and the weight histograms only.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from microglia.baselines import ReLUMLP
from microglia.training.evaluate import Evaluation
from microglia.training.files import atomic_write_bytes
from microglia.training.runs import LoadedRun, evaluate_run

logger = logging.getLogger(__name__)

REPORT_DIR = "report"
RATE_SAMPLES = 2000
"""Test samples simulated for the firing-rate histograms."""


def write_report(run: LoadedRun) -> Path:
    """Draw the figures and write `RUN/report/report.md`; return the page's path."""
    folder = run.run_dir / REPORT_DIR
    test = evaluate_run(run)

    if isinstance(run.network, ReLUMLP):
        # an ann run has no spikes and no synapse masks: curves and weights only
        figures = {
            "learning_curves.png": _learning_curves(run.history),
            "weights.png": _weight_histograms(run),
        }
    else:
        figures = {
            "learning_curves.png": _learning_curves(run.history),
            "spike_raster.png": _spike_raster(run),
            "firing_rates.png": _firing_rates(run),
            "weights.png": _weight_histograms(run),
            "density.png": _density(run.history, len(run.network.synaptic_layers)),
        }

    for name, figure in figures.items():
        _save_png(figure, folder / name)

    page = folder / "report.md"
    atomic_write_bytes(page, _markdown(run, test, list(figures)).encode())
    logger.debug("report written to %s", page)
    return page


def _learning_curves(history: list[dict]) -> Figure:
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    epochs = [record["epoch"] for record in history]
    for key, label in (("train", "training"), ("val", "validation")):
        losses = [record.get(f"{key}_loss") for record in history]
        accuracies = [record.get(f"{key}_accuracy") for record in history]
        if any(value is not None for value in losses):
            loss_axes.plot(epochs, losses, marker="o", label=label)
            accuracy_axes.plot(epochs, accuracies, marker="o", label=label)
    loss_axes.set(xlabel="epoch", ylabel="readout cross-entropy", title="loss")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for axes in (loss_axes, accuracy_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if epochs:
            axes.legend()
        else:
            axes.text(0.5, 0.5, "no finished epoch", ha="center", va="center", transform=axes.transAxes)
    return figure


@torch.no_grad()
def _spike_raster(run: LoadedRun) -> Figure:
    sample = run.dataset.test.images[:1]
    label = int(run.dataset.test.labels[0])
    record = run.network.simulate(run.encoder(sample))
    layers = len(record.spikes)

    figure = Figure(figsize=(8, 2.5 * layers), layout="constrained")
    axes_list = figure.subplots(layers, 1, squeeze=False)[:, 0]
    for index, (axes, spikes) in enumerate(zip(axes_list, record.spikes)):
        steps, neurons = torch.nonzero(spikes[:, 0], as_tuple=True)
        axes.scatter(steps.numpy(), neurons.numpy(), s=40, marker="|", color="black")
        axes.set(
            xlim=(-0.5, spikes.shape[0] - 0.5),
            ylim=(-0.5, spikes.shape[2] - 0.5),
            xlabel="time step",
            ylabel="neuron",
            title=f"hidden layer {index + 1}: {len(steps)} spikes (first test sample, label {label})",
        )
    return figure


@torch.no_grad()
def _firing_rates(run: LoadedRun) -> Figure:
    images = run.dataset.test.images[:RATE_SAMPLES]
    counts = [torch.zeros(layer.out_features) for layer in run.network.hidden]
    steps = run.config.steps
    for start in range(0, len(images), 500):
        record = run.network.simulate(run.encoder(images[start : start + 500]))
        for total, spikes in zip(counts, record.spikes):
            total += spikes.sum(dim=(0, 1))

    figure = Figure(figsize=(5 * len(counts), 3.5), layout="constrained")
    axes_list = figure.subplots(1, len(counts), squeeze=False)[0]
    for index, (axes, total) in enumerate(zip(axes_list, counts)):
        rates = (total / (len(images) * steps)).numpy()
        axes.hist(rates, bins=40, range=(0.0, 1.0), color="tab:blue")
        axes.set(
            xlabel="spikes per step",
            ylabel="neurons",
            title=f"hidden layer {index + 1}, {len(images)} test samples",
        )
    return figure


def _weight_histograms(run: LoadedRun) -> Figure:
    if isinstance(run.network, ReLUMLP):
        weights = [layer.weight.detach().flatten() for layer in run.network.layers]
    else:
        weights = [layer.weight.detach()[layer.mask.bool()] for layer in run.network.synaptic_layers]

    figure = Figure(figsize=(4.5 * len(weights), 3.5), layout="constrained")
    axes_list = figure.subplots(1, len(weights), squeeze=False)[0]
    for index, (axes, present) in enumerate(zip(axes_list, weights)):
        present = present.numpy()
        axes.hist(present, bins=60, color="tab:green")
        name = "readout" if index == len(weights) - 1 else f"hidden layer {index + 1}"
        axes.set(xlabel="weight", ylabel="synapses", title=f"{name}: {present.size} synapses")
    return figure


def _density(history: list[dict], n_layers: int) -> Figure:
    figure = Figure(figsize=(6, 3.5), layout="constrained")
    axes = figure.subplots()
    epochs = [record["epoch"] for record in history if record.get("density")]
    densities = [record["density"] for record in history if record.get("density")]
    for index in range(n_layers):
        name = "readout" if index == n_layers - 1 else f"hidden layer {index + 1}"
        axes.plot(epochs, [density[index] for density in densities], marker="o", label=name)
    axes.set(xlabel="epoch", ylabel="fraction of synapses present", ylim=(0.0, 1.05), title="density")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend()
    return figure


def _save_png(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


def _markdown(run: LoadedRun, test: Evaluation, figures: list[str]) -> str:
    config = run.config
    sizes = "-".join(str(size) for size in run.network.sizes)
    rule = config.rule.value + (f", {config.feedback.value} feedback" if config.rule.value == "glia" else "")
    if isinstance(run.network, ReLUMLP):
        description = f"{sizes} ReLU MLP (the rate-equivalent network) on `{config.dataset}`, trained with {rule}"
    else:
        description = f"{sizes} spiking network on `{config.dataset}`, trained with {rule}, {config.steps} steps per sample"
    lines = [
        f"# Run {run.run_dir.name}",
        "",
        f"{description}, seed {config.seed}. Weights: `{run.weights_path.name}`.",
        "",
        "## Test metrics",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| accuracy | {test.accuracy:.4f} ({round(test.accuracy * test.samples)}/{test.samples}) |",
        f"| loss | {test.loss:.4f} |",
    ]
    if test.firing_rate is not None:
        lines += [
            f"| spikes per sample | {test.spikes_per_sample:.1f} |",
            f"| SynOps per sample | {test.synops_per_sample:.0f} |",
            f"| firing rate per hidden layer | {_numbers(test.firing_rate)} |",
            f"| dead fraction per hidden layer | {_numbers(test.dead_fraction)} |",
            f"| saturated fraction per hidden layer | {_numbers(test.saturated_fraction)} |",
        ]
    if run.summary:
        best = run.summary.get("best_val_accuracy")
        epochs = f"{run.summary.get('best_epoch')} of {run.summary.get('epochs_run')}"
        if best is None:
            lines.append(f"| tested epoch | {epochs} (no validation split, so the last epoch) |")
        else:
            lines.append(f"| best epoch | {epochs} |")
            lines.append(f"| best validation accuracy | {best:.4f} |")
        lines.append(f"| training samples/s | {run.summary.get('train_samples_per_second', 0.0):.0f} |")
    else:
        lines.append(f"| epochs finished | {len(run.history)} of {config.epochs} (run unfinished) |")

    lines += ["", "## Figures", ""]
    for name in figures:
        title = name.removesuffix(".png").replace("_", " ")
        lines += [f"### {title}", "", f"![{title}]({name})", ""]

    lines += ["## Confusion matrix (rows: true class, columns: predicted)", ""]
    classes = range(len(test.confusion))
    lines.append("| | " + " | ".join(str(c) for c in classes) + " |")
    lines.append("| --- " * (len(test.confusion) + 1) + "|")
    for true_class, row in zip(classes, test.confusion):
        lines.append(f"| **{true_class}** | " + " | ".join(str(count) for count in row) + " |")
    return "\n".join(lines) + "\n"


def _numbers(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)
