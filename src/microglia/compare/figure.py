"""The comparison figure: test accuracy per configuration, learning curves and alignment curves.

Panels (curves are means over seeds, per epoch):
1. test accuracy per configuration, mean with one standard deviation as error bar (none for one seed);
2. validation accuracy per epoch;
3. angle between the glial update and the BPTT gradient per epoch, one line per synaptic layer
   (the hidden layers, then the readout), one colour per configuration;
4. fraction of synapses whose update sign agrees with the BPTT gradient, per epoch and layer.
Panels 3 and 4 show only glia runs that logged alignment.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from microglia.compare.report import RunRecord, TableRow  # noqa: E402


def plot_comparison(rows: list[TableRow], records: list[RunRecord], path: Path) -> Path:
    """Draw the four panels into a PNG at `path`; return `path`."""
    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    _plot_accuracy(axes[0, 0], rows)
    _plot_curves(axes[0, 1], rows, records, "val_accuracy", scale=100.0)
    axes[0, 1].set_ylabel("validation accuracy (%)")
    axes[0, 1].set_title("learning curves")
    _plot_layer_curves(axes[1, 0], rows, records, "alignment_angle_deg")
    axes[1, 0].set_ylabel("angle to BPTT gradient (degrees)")
    axes[1, 0].set_title("alignment angle per layer")
    _plot_layer_curves(axes[1, 1], rows, records, "sign_agreement")
    axes[1, 1].set_ylabel("sign agreement with BPTT gradient")
    axes[1, 1].set_title("sign agreement per layer")

    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _plot_accuracy(axis, rows: list[TableRow]) -> None:
    labels, means, errors = [], [], []
    for row in rows:
        mean, std = row.values["test_accuracy"]
        if mean is None:
            continue
        labels.append(row.label)
        means.append(mean * 100.0)
        # one seed has no standard deviation, so it gets no error bar
        errors.append(np.nan if std is None else std * 100.0)

    # points, not bars: a bar's height reads from 0, and the axis here starts near the lowest mean
    positions = np.arange(len(labels))
    axis.errorbar(positions, means, yerr=errors, fmt="o", capsize=4, color="tab:blue")
    axis.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    axis.set_ylabel("test accuracy (%)")
    axis.set_title("test accuracy (mean ± std over seeds)")


def _epoch_means(records: list[RunRecord], key: str, layer: int | None = None) -> tuple[list[int], list[float]]:
    """Mean of `key` (or of its `layer` entry) over the runs, per epoch that every run reached."""
    series = []
    for record in records:
        values = []
        for line in record.metrics:
            value = line.get(key)
            if layer is not None:
                value = value[layer] if value is not None else None
            values.append(np.nan if value is None else float(value))
        series.append(values)
    epochs = min(len(values) for values in series)
    table = np.array([values[:epochs] for values in series], dtype=float)
    if np.isnan(table).all():
        return [], []
    means = np.nanmean(table, axis=0)
    return list(range(1, epochs + 1)), means.tolist()


def _plot_curves(axis, rows: list[TableRow], records: list[RunRecord], key: str, scale: float = 1.0) -> None:
    for row in rows:
        runs = [record for record in records if record.label == row.label]
        if not runs:
            continue
        epochs, means = _epoch_means(runs, key)
        if epochs:
            axis.plot(epochs, [m * scale for m in means], marker=".", label=row.label)
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if axis.lines:
        axis.legend(fontsize=7)


def _plot_layer_curves(axis, rows: list[TableRow], records: list[RunRecord], key: str) -> None:
    styles = ["-", "--", ":", "-."]
    for index, row in enumerate(rows):
        runs = [record for record in records if record.label == row.label]
        first = runs[0].metrics[0].get(key) if runs and runs[0].metrics else None
        if not first:
            continue
        color = f"C{index % 10}"
        for layer in range(len(first)):
            epochs, means = _epoch_means(runs, key, layer)
            if epochs:
                name = "readout" if layer == len(first) - 1 else f"hidden layer {layer + 1}"
                label = f"{row.label} {name}"
                axis.plot(epochs, means, linestyle=styles[layer % len(styles)], marker=".", color=color, label=label)
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if axis.lines:
        axis.legend(fontsize=7)
    else:
        axis.text(0.5, 0.5, "no glia run logged alignment", ha="center", va="center", transform=axis.transAxes)
