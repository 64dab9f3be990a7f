"""Wall time of one training epoch with the library's own trainer."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from microglia.training import TrainConfig, Trainer

logger = logging.getLogger(__name__)

MNIST_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "mnist.toml"
"""The default MNIST configuration, used when the repository has one."""

FALLBACK_MNIST_SETTINGS = {"hidden": (500,), "steps": 10, "batch_size": 64, "rule": "glia", "feedback": "sign"}
"""The MNIST settings used when configs/mnist.toml is absent: 784-500-10, T = 10, batch 64, sign feedback."""


def epoch_config(dataset: str, data_dir: str | None, out: str) -> tuple[TrainConfig, str]:
    """Return the one-epoch configuration for `dataset` and where its settings came from."""
    overrides = {"dataset": dataset, "data_dir": data_dir, "epochs": 1, "out": out}
    if dataset == "mnist" and MNIST_CONFIG.exists():
        return TrainConfig.from_toml(MNIST_CONFIG, **overrides), str(MNIST_CONFIG.name)
    return TrainConfig.from_dict({**FALLBACK_MNIST_SETTINGS, **overrides}), "one hidden layer of 500, T = 10, batch 64, glia sign"


def time_epoch(dataset: str, data_dir: str | None) -> dict:
    """Train one epoch of `dataset` with the default settings and return its times in seconds.

    `train_seconds` covers the training minibatches only; `run_seconds` the whole run,
    with data loading, validation and the final test.
    """
    with tempfile.TemporaryDirectory() as directory:
        config, source = epoch_config(dataset, data_dir, str(Path(directory) / "run"))
        logger.info("timing one %s epoch (%s)", dataset, source)
        start = time.perf_counter()
        result = Trainer(config, progress=False).run()
        run_seconds = time.perf_counter() - start

    record = result.history[0]
    return {
        "dataset": dataset,
        "configuration": source,
        "settings": {key: value for key, value in config.to_dict().items() if key not in ("out", "data_dir")},
        "train_seconds": record["epoch_seconds"],
        "run_seconds": run_seconds,
        "samples_per_second": record["samples_per_second"],
        "validation_accuracy": record["val_accuracy"],
        "test_accuracy": result.test.accuracy,
    }
