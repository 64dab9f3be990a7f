"""The training loop: epochs of minibatches, validation-based model selection, one final test."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import torch
from tqdm.auto import tqdm

from microglia.baselines import ANNRule, BPTTRule, PerturbationRule, ReLUMLP
from microglia.data import Dataset, load_dataset
from microglia.encoding import make_encoder
from microglia.errors import ConfigError, TrainingDivergedError
from microglia.glia import GlialRule
from microglia.network import SpikingMLP
from microglia.training.alignment import measure_alignment
from microglia.training.config import LearningRule, Schedule, TrainConfig
from microglia.training.evaluate import Evaluation, evaluate, evaluate_ann
from microglia.training.files import atomic_save_tensors, atomic_write_bytes

logger = logging.getLogger(__name__)

EVALUATION_BATCH_SIZE = 1000


@dataclass
class RunResult:
    """What a finished run produced."""

    config: TrainConfig
    run_dir: Path
    test: Evaluation
    best_epoch: int
    history: list[dict] = field(default_factory=list)


def build_network(config: TrainConfig, n_features: int, n_classes: int, generator: torch.Generator) -> SpikingMLP:
    """Build the network that `config` describes for a data set's input and class counts."""
    return SpikingMLP(
        [n_features, *config.hidden, n_classes],
        beta=config.beta,
        kappa=config.kappa,
        threshold=config.threshold,
        reset=config.reset,
        gamma=config.gamma,
        surrogate=config.surrogate,
        init_scale=config.init_scale,
        generator=generator,
    )


def build_rule(config: TrainConfig, network: SpikingMLP, generator: torch.Generator):
    """Build the learning rule that `config` names; it exposes `network`, `train_batch` and `optimizer`.

    The `ann` rule trains a `ReLUMLP` of the same sizes in place of the spiking `network`.
    """
    if config.rule is LearningRule.BPTT:
        return BPTTRule(network, lr=config.lr, burn_in=config.burn_in)
    if config.rule is LearningRule.ANN:
        return ANNRule(ReLUMLP(network.sizes, generator=generator), lr=config.lr)
    if config.rule is LearningRule.PERTURBATION:
        return PerturbationRule(
            network,
            lr=config.lr,
            sigma=config.perturbation_sigma,
            population=config.perturbation_pairs,
            rank=config.perturbation_rank,
            burn_in=config.burn_in,
            generator=generator,
        )
    return GlialRule(
        network,
        feedback=config.feedback,
        consolidation=config.consolidation,
        lr=config.lr,
        sleep_interval=config.sleep_interval,
        burn_in=config.burn_in,
        chunk_steps=config.chunk_steps,
        generator=generator,
    )


def default_run_dir(config: TrainConfig) -> Path:
    """Return `runs/<dataset>-<rule>[-<feedback>]-<timestamp>`."""
    name = f"{config.dataset}-{config.rule.value}"
    if config.rule is LearningRule.GLIA:
        name += f"-{config.feedback.value}"
    return Path("runs") / f"{name}-{datetime.now():%Y%m%d-%H%M%S}"


class Trainer:
    """Train a spiking network as `config` describes and write a run directory.

    The run directory holds `config.toml` (the resolved settings), `metrics.jsonl` (one
    line per epoch), `summary.json` (with the test accuracy) and `weights.safetensors`.

    Args:
        config: the run's settings.
        dataset: the data; loaded as `config` describes when None.
        progress: show a progress bar on stderr.
    """

    def __init__(self, config: TrainConfig, *, dataset: Dataset | None = None, progress: bool = True):
        self.config = config
        self.progress = progress
        if config.threads:
            torch.set_num_threads(config.threads)

        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.dataset = dataset or load_dataset(
            config.dataset,
            config.data_dir,
            validation_fraction=config.validation_fraction,
            seed=config.seed,
            download=config.download,
        )
        self.network = build_network(config, self.dataset.n_features, self.dataset.n_classes, self.generator)
        self.rule = build_rule(config, self.network, self.generator)
        self.network = self.rule.network
        self.encoder = make_encoder(config.encoding, config.steps, self.generator)
        self.probe = self._alignment_probe()

        self.run_dir = Path(config.out) if config.out else default_run_dir(config)
        self.batches_per_epoch = math.ceil(len(self.dataset.train) / config.batch_size)
        self.history: list[dict] = []
        self.best_accuracy = -1.0
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def run(self) -> RunResult:
        """Train for the configured epochs, restore the best epoch, test once, write the results."""
        config = self.config
        self._prepare_run_dir()
        logger.info("training %s on %s, run directory %s", config.rule.value, config.dataset, self.run_dir)

        start = time.perf_counter()
        epochs_without_gain = 0
        for epoch in range(1, config.epochs + 1):
            record = self.train_epoch(epoch)
            self.history.append(record)
            self._append_metrics(record)
            logger.info(_describe_epoch(record, config.epochs))

            if record["val_accuracy"] is None or record["val_accuracy"] >= self.best_accuracy:
                self.best_accuracy = record["val_accuracy"] if record["val_accuracy"] is not None else -1.0
                self.best_epoch = epoch
                self.best_state = {name: tensor.clone() for name, tensor in self.network.state_dict().items()}
                epochs_without_gain = 0
            else:
                epochs_without_gain += 1
            if config.patience and epochs_without_gain >= config.patience:
                logger.info("stopping early: no better validation accuracy for %d epochs", config.patience)
                break
        train_seconds = time.perf_counter() - start

        # the test split is evaluated once, with the weights of the best validation epoch
        self.network.load_state_dict(self.best_state)
        test = self._evaluate(self.dataset.test.images, self.dataset.test.labels, confusion=True)
        self._write_results(test, train_seconds)
        return RunResult(config, self.run_dir, test, self.best_epoch, self.history)

    def train_epoch(self, epoch: int) -> dict:
        """Train one epoch, validate, and return the epoch's metrics record."""
        config = self.config
        train = self.dataset.train
        order = torch.randperm(len(train), generator=self.generator)

        loss_sum, correct, writes = 0.0, 0, 0
        spikes = [0.0] * len(config.hidden)
        bar = tqdm(
            total=self.batches_per_epoch,
            desc=f"epoch {epoch}/{config.epochs}",
            disable=not self.progress,
            leave=False,
            unit="batch",
        )
        start = time.perf_counter()
        for index, first in enumerate(range(0, len(train), config.batch_size)):
            batch = order[first : first + config.batch_size]
            self._set_learning_rate((epoch - 1) * self.batches_per_epoch + index)

            result = self.rule.train_batch(self.encoder(train.images[batch]), train.labels[batch])
            self._check_finite(result.loss, epoch, index)

            loss_sum += result.loss * len(batch)
            correct += result.correct
            writes += result.weight_writes
            spikes = [total + new for total, new in zip(spikes, result.spikes_per_layer)]
            bar.update(1)
            bar.set_postfix(loss=f"{result.loss:.3f}", acc=f"{result.correct / len(batch):.3f}")
        if isinstance(self.rule, GlialRule) and epoch == config.epochs:
            writes += self.rule.sleep()
        seconds = time.perf_counter() - start
        bar.close()

        validation = self._validate()
        alignment = self._measure_alignment()
        n_train = len(train)
        return {
            "epoch": epoch,
            "lr": self.rule.optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum / n_train,
            "train_accuracy": correct / n_train,
            "train_firing_rate": None
            if isinstance(self.network, ReLUMLP)
            else [total / (n_train * config.steps * n) for total, n in zip(spikes, config.hidden)],
            "samples_per_second": n_train / seconds,
            "epoch_seconds": seconds,
            "weight_writes_per_sample": writes / n_train,
            "density": self._density(),
            **_validation_fields(validation),
            "alignment_angle_deg": alignment.angle_deg if alignment else None,
            "sign_agreement": alignment.sign_agreement if alignment else None,
        }

    def _validate(self) -> Evaluation | None:
        validation = self.dataset.validation
        if len(validation) == 0:
            return None
        return self._evaluate(validation.images, validation.labels)

    def _evaluate(self, images: torch.Tensor, labels: torch.Tensor, *, confusion: bool = False) -> Evaluation:
        if isinstance(self.network, ReLUMLP):
            return evaluate_ann(
                self.network, images, labels, self.encoder, batch_size=EVALUATION_BATCH_SIZE, confusion=confusion
            )
        return evaluate(
            self.network,
            images,
            labels,
            self.encoder,
            burn_in=self.config.burn_in,
            batch_size=EVALUATION_BATCH_SIZE,
            confusion=confusion,
        )

    def _density(self) -> list[float] | None:
        if isinstance(self.network, ReLUMLP):
            return None
        return [layer.density for layer in self.network.synaptic_layers]

    def _alignment_probe(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Encode the first `alignment_probe` validation samples once, with an encoder of their own.

        The probe's own random generator keeps the training data order and spike trains
        the same whether alignment is measured or not.
        """
        config = self.config
        validation = self.dataset.validation
        if not isinstance(self.rule, GlialRule) or config.alignment_probe == 0 or len(validation) == 0:
            return None
        encoder = make_encoder(config.encoding, config.steps, torch.Generator().manual_seed(config.seed))
        count = min(config.alignment_probe, len(validation))
        return encoder(validation.images[:count]), validation.labels[:count]

    def _measure_alignment(self):
        if self.probe is None:
            return None
        return measure_alignment(self.rule, *self.probe)

    def _set_learning_rate(self, batch_number: int) -> None:
        config = self.config
        lr = config.lr
        if config.schedule is Schedule.COSINE:
            progress = batch_number / (config.epochs * self.batches_per_epoch)
            lr = config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        for group in self.rule.optimizer.param_groups:
            group["lr"] = lr

    def _check_finite(self, loss: float, epoch: int, batch: int) -> None:
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"training diverged: the loss became {loss} at epoch {epoch}, batch {batch}; "
                f"try a smaller --lr (now {self.config.lr})"
            )
        for name, parameter in self.network.named_parameters():
            if not torch.isfinite(parameter).all():
                raise TrainingDivergedError(
                    f"training diverged: {name} holds NaN or infinite values after epoch {epoch}, batch {batch}; "
                    f"try a smaller --lr (now {self.config.lr})"
                )

    def _prepare_run_dir(self) -> None:
        if (self.run_dir / "metrics.jsonl").exists():
            raise ConfigError(
                f"run directory {self.run_dir} already holds a run; choose another --out or remove it first"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_toml(self.run_dir / "config.toml")

    def _append_metrics(self, record: dict) -> None:
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def _write_results(self, test: Evaluation, train_seconds: float) -> None:
        config = self.config
        samples = sum(len(self.dataset.train) for _ in self.history)
        summary = {
            "test_accuracy": test.accuracy,
            "test_loss": test.loss,
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_accuracy if self.best_accuracy >= 0 else None,
            "epochs_run": len(self.history),
            "train_seconds": train_seconds,
            "train_samples_per_second": samples / train_seconds,
            "test": test.to_dict(),
            "sizes": self.network.sizes,
            "config": config.to_dict(),
        }
        atomic_save_tensors(
            self.run_dir / "weights.safetensors",
            self.network.state_dict(),
            metadata={"sizes": json.dumps(self.network.sizes), "format": f"microglia.{type(self.network).__name__}"},
        )
        atomic_write_bytes(self.run_dir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())


def train(config: TrainConfig, *, progress: bool = True) -> RunResult:
    """Train as `config` describes and return the result; see `Trainer`."""
    return Trainer(config, progress=progress).run()


def _validation_fields(validation: Evaluation | None) -> dict:
    if validation is None:
        keys = ("val_accuracy", "val_loss", "firing_rate", "spikes_per_sample", "synops_per_sample")
        return {key: None for key in keys} | {"dead_fraction": None, "saturated_fraction": None}
    return {
        "val_accuracy": validation.accuracy,
        "val_loss": validation.loss,
        "firing_rate": validation.firing_rate,
        "spikes_per_sample": validation.spikes_per_sample,
        "synops_per_sample": validation.synops_per_sample,
        "dead_fraction": validation.dead_fraction,
        "saturated_fraction": validation.saturated_fraction,
    }


def _describe_epoch(record: dict, epochs: int) -> str:
    text = (
        f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.4f}, "
        f"train accuracy {record['train_accuracy']:.4f}"
    )
    if record["val_accuracy"] is not None:
        text += f", validation accuracy {record['val_accuracy']:.4f}"
    if record["firing_rate"] is not None:
        rates = ", ".join(f"{rate:.3f}" for rate in record["firing_rate"])
        text += f", firing rate [{rates}]"
    return text + f", {record['samples_per_second']:.0f} samples/s"
