"""Finished or interrupted runs, read back from their run directory for evaluation and reports."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from microglia.data import Dataset, load_dataset
from microglia.encoding import make_encoder
from microglia.errors import CheckpointError
from microglia.baselines import ReLUMLP
from microglia.network import SpikingMLP
from microglia.training.checkpoint import list_checkpoints, load_weights
from microglia.training.config import LearningRule, TrainConfig
from microglia.training.evaluate import Evaluation, evaluate, evaluate_ann
from microglia.training.files import atomic_write_bytes
from microglia.training.trainer import EVALUATION_BATCH_SIZE, build_network

logger = logging.getLogger(__name__)


@dataclass
class LoadedRun:
    """A run directory with its configuration, data, and network holding the saved weights."""

    run_dir: Path
    config: TrainConfig
    dataset: Dataset
    network: SpikingMLP | ReLUMLP
    """The spiking network, or the ReLU MLP of an `ann` run."""
    encoder: nn.Module
    weights_path: Path
    history: list[dict] = field(default_factory=list)
    summary: dict | None = None

    @property
    def evaluation_path(self) -> Path:
        """Path of the evaluation file: `evaluation.json` for the run's own weights file, else one named after the weights."""
        if self.weights_path.resolve() == (self.run_dir / "weights.safetensors").resolve():
            return self.run_dir / "evaluation.json"
        return self.run_dir / f"evaluation-{self.weights_path.stem}.json"


def load_run(
    run_dir: str | Path, *, weights: str | Path | None = None, data_dir: str | None = None, dataset: Dataset | None = None
) -> LoadedRun:
    """Read a run directory: its config.toml, metrics.jsonl, summary.json, and weights.

    Args:
        run_dir: the run directory.
        weights: a weights file or checkpoint to load instead of the run's own
            `weights.safetensors` (or, while the run is unfinished, its newest checkpoint).
        data_dir: where the data set lies, when it has moved since training.
        dataset: the data, already loaded.

    Raises:
        CheckpointError: the run or its weights cannot be read or do not fit its configuration.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise CheckpointError(f"{run_dir} is not a run directory: config.toml not found")
    overrides = {"data_dir": data_dir} if data_dir is not None else {}
    config = TrainConfig.from_toml(config_path, **overrides)

    weights_path = Path(weights) if weights is not None else _default_weights(run_dir)
    dataset = dataset or load_dataset(
        config.dataset, config.data_dir, validation_fraction=config.validation_fraction, seed=config.seed
    )
    generator = torch.Generator().manual_seed(config.seed)
    network = build_network(config, dataset.n_features, dataset.n_classes, generator)
    if config.rule is LearningRule.ANN:
        # built after the spiking network, so the encoder's generator state matches other runs
        network = ReLUMLP(network.sizes)
    load_weights(weights_path, network)
    network.eval()

    return LoadedRun(
        run_dir=run_dir,
        config=config,
        dataset=dataset,
        network=network,
        encoder=make_encoder(config.encoding, config.steps, generator),
        weights_path=weights_path,
        history=read_history(run_dir),
        summary=_read_json(run_dir / "summary.json"),
    )


def evaluate_run(run: LoadedRun) -> Evaluation:
    """Evaluate the run's network on its test split, with the confusion matrix, and write `run.evaluation_path`.

    An `ann` run's ReLU MLP has no spikes, so its spike statistics are None.
    """
    test = run.dataset.test
    if isinstance(run.network, ReLUMLP):
        result = evaluate_ann(
            run.network, test.images, test.labels, run.encoder, batch_size=EVALUATION_BATCH_SIZE, confusion=True
        )
    else:
        result = evaluate(
            run.network,
            test.images,
            test.labels,
            run.encoder,
            burn_in=run.config.burn_in,
            batch_size=EVALUATION_BATCH_SIZE,
            confusion=True,
        )
    record = {"weights": str(run.weights_path), "split": "test", **result.to_dict()}
    atomic_write_bytes(run.evaluation_path, (json.dumps(record, indent=2) + "\n").encode())
    return result


def read_history(run_dir: Path) -> list[dict]:
    """Return the per-epoch records of metrics.jsonl; a damaged last line (from a kill) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except ValueError:
            logger.warning("%s line %d is not valid JSON; skipped", path, number)
    return records


def _default_weights(run_dir: Path) -> Path:
    final = run_dir / "weights.safetensors"
    if final.exists():
        return final
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise CheckpointError(f"{run_dir} has neither weights.safetensors nor a checkpoint to evaluate")
    logger.warning("%s has not finished; using its newest checkpoint %s", run_dir, checkpoints[0].name)
    return checkpoints[0]


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        logger.warning("%s is not valid JSON; ignored", path)
        return None
