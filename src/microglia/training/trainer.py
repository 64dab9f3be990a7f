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
from microglia.errors import CheckpointError, ConfigError, TrainingDivergedError, TrainingInterrupted
from microglia.glia import DensitySchedule, GlialRule
from microglia.network import SpikingMLP
from microglia.training.checkpoint import (
    CHECKPOINT_DIR,
    check_network_tensors,
    checkpoint_path,
    load_newest_checkpoint,
    save_checkpoint,
    weights_format,
)
from microglia.training.alignment import measure_alignment
from microglia.training.config import LearningRule, Schedule, TrainConfig
from microglia.training.evaluate import Evaluation, evaluate, evaluate_ann
from microglia.training.files import atomic_save_tensors, atomic_write_bytes
from microglia.training.progress import EpochProgress, StopSignals

logger = logging.getLogger(__name__)

EVALUATION_BATCH_SIZE = 1000


@dataclass
class RunResult:
    """Results of a finished run."""

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


def build_rule(config: TrainConfig, network: SpikingMLP, generator: torch.Generator, *, batches_per_epoch: int = 1):
    """Build the learning rule that `config` names; it exposes `network`, `train_batch` and `optimizer`.

    `batches_per_epoch` sets the length of the density schedule, in structural steps.

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
        density=density_schedule(config, batches_per_epoch),
        prune_fraction=config.prune_fraction,
        regrowth=config.regrowth,
        territory_size=config.territory_size,
        structure_interval=config.structure_interval,
        target_rate=config.target_rate,
        homeostasis_rate=config.homeostasis_rate,
    )


def density_schedule(config: TrainConfig, batches_per_epoch: int) -> DensitySchedule:
    """Return the density schedule of a run, its decay counted in structural steps.

    The run has `epochs * batches_per_epoch / sleep_interval` sleeps and a structural step
    every `structure_interval` of them. The density cosine takes the first `density_decay` of
    those steps, and a cosine `prune_schedule` decays the exchange over all of them.
    """
    initial = config.density if config.initial_density is None else config.initial_density
    sleeps = config.epochs * batches_per_epoch // config.sleep_interval
    steps = sleeps // config.structure_interval
    decay_steps = max(1, math.floor(config.density_decay * steps))
    exchange_steps = max(1, steps) if config.prune_schedule is Schedule.COSINE else 0
    return DensitySchedule(final=config.density, initial=initial, decay_steps=decay_steps, exchange_steps=exchange_steps)


def default_run_dir(config: TrainConfig) -> Path:
    """Return a new `runs/<dataset>-<rule>[-<feedback>]-<timestamp>[-<n>]` that does not exist yet."""
    name = f"{config.dataset}-{config.rule.value}"
    if config.rule is LearningRule.GLIA:
        name += f"-{config.feedback.value}"
    base = Path("runs") / f"{name}-{datetime.now():%Y%m%d-%H%M%S}"
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


class Trainer:
    """Train a spiking network as `config` describes and write a run directory.

    The run directory contains `config.toml` (the resolved settings without `out`),
    `metrics.jsonl` (one line per epoch), `checkpoints/` (see `microglia.training.checkpoint`),
    and at the end `summary.json` (with the test accuracy) and `weights.safetensors`.

    A checkpoint is written before the first minibatch, every `config.checkpoint_every`
    minibatches and at every epoch end. SIGINT and SIGTERM stop training at the next minibatch
    boundary with a checkpoint (`TrainingInterrupted`); `Trainer.resume` continues from the
    newest checkpoint and ends with the same weights as an uninterrupted run.

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
        self.batches_per_epoch = math.ceil(len(self.dataset.train) / config.batch_size)
        self.network = build_network(config, self.dataset.n_features, self.dataset.n_classes, self.generator)
        self.rule = build_rule(config, self.network, self.generator, batches_per_epoch=self.batches_per_epoch)
        self.network = self.rule.network
        _warn_about_schedule(config, self.batches_per_epoch)
        self.encoder = make_encoder(config.encoding, config.steps, self.generator)
        self.probe = self._alignment_probe()

        self.run_dir = Path(config.out) if config.out else default_run_dir(config)
        self.epoch_progress = EpochProgress(epoch=1, spikes=[0.0] * len(config.hidden))
        self.history: list[dict] = []
        self.best_accuracy = -1.0
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.epochs_without_gain = 0
        self.stopped_early = False
        self.train_seconds = 0.0
        self.resumed = False
        self.last_checkpoint: Path | None = None
        self._stop = StopSignals()

    @classmethod
    def resume(cls, run_dir: str | Path, *, dataset: Dataset | None = None, progress: bool = True, **overrides) -> Trainer:
        """Rebuild the trainer of an interrupted run from its `config.toml` and newest valid checkpoint.

        A run killed before its first checkpoint starts again from the beginning.

        Args:
            run_dir: the run directory.
            overrides: settings that do not change what is learned: `data_dir`, and `threads`
                (which can change the last bits of floating-point sums, with a warning).

        Raises:
            CheckpointError: `run_dir` contains no run, the run has finished, or no checkpoint is readable.
        """
        run_dir = Path(run_dir)
        if not (run_dir / "config.toml").is_file():
            raise CheckpointError(f"cannot resume {run_dir}: it contains no run (config.toml not found)")
        if (run_dir / "summary.json").exists():
            raise CheckpointError(f"cannot resume {run_dir}: the run has finished (summary.json exists)")
        config = TrainConfig.from_toml(run_dir / "config.toml", **overrides)
        saved_threads = TrainConfig.from_toml(run_dir / "config.toml").threads
        if config.threads != saved_threads:
            logger.warning(
                "resuming with %d threads where the run used %d: the thread count changes the order of "
                "floating-point sums, so the weights may differ from an uninterrupted run in the last bits",
                config.threads,
                saved_threads,
            )

        trainer = cls(config, dataset=dataset, progress=progress)
        trainer.run_dir = run_dir
        trainer.resumed = True
        newest = load_newest_checkpoint(run_dir)
        if newest is None:
            logger.warning("no checkpoint in %s; starting the run from its beginning", run_dir)
        else:
            path, state = newest
            trainer.load_state(state, path)
            trainer.last_checkpoint = path
            logger.info("resuming %s from %s", run_dir, path.name)
        return trainer

    def run(self) -> RunResult:
        """Train for the configured epochs, restore the best epoch, test once, write the results."""
        config = self.config
        if self.resumed:
            self._rewrite_metrics()
        else:
            self._prepare_run_dir()
        if self.last_checkpoint is None:
            self.save_checkpoint()
        logger.info("training %s on %s, run directory %s", config.rule.value, config.dataset, self.run_dir)

        with self._stop:
            while not self.stopped_early and self.epoch_progress.epoch <= config.epochs:
                self._train_epoch()
            self._stop_if_requested()

        # the test split is evaluated once, with the weights of the best validation epoch
        if self.best_state is None:
            logger.warning("the density schedule never reached its final density; testing the last epoch")
            self.best_epoch = len(self.history)
        else:
            self.network.load_state_dict(self.best_state)
        test = self._evaluate(self.dataset.test.images, self.dataset.test.labels, confusion=True)
        self._write_results(test)
        return RunResult(config, self.run_dir, test, self.best_epoch, self.history)

    def train_epoch(self, epoch: int) -> dict:
        """Train epoch `epoch` from its first minibatch, validate, and return its metrics record."""
        self.epoch_progress = EpochProgress(epoch=epoch, spikes=[0.0] * len(self.config.hidden))
        return self._finish_epoch_record()

    def _train_epoch(self) -> None:
        """Train the rest of the epoch in progress, then select the model and checkpoint."""
        config = self.config
        record = self._finish_epoch_record()
        epoch = record["epoch"]
        self.history.append(record)
        self._append_metrics(record)
        logger.info(_describe_epoch(record, config.epochs))

        # only epochs at the final density compete, so the tested network has the density asked for
        if _reached_final_density(self.rule):
            self._select_model(record)

        self.epoch_progress = EpochProgress(epoch=epoch + 1, spikes=[0.0] * len(config.hidden))
        self.save_checkpoint()
        self._stop_if_requested()

    def _select_model(self, record: dict) -> None:
        """Keep the weights of the epoch in `record` if its validation accuracy is the best so far."""
        accuracy = record["val_accuracy"]
        if accuracy is None or accuracy >= self.best_accuracy:
            self.best_accuracy = accuracy if accuracy is not None else -1.0
            self.best_epoch = record["epoch"]
            self.best_state = {name: tensor.clone() for name, tensor in self.network.state_dict().items()}
            self.epochs_without_gain = 0
        else:
            self.epochs_without_gain += 1

        if self.config.patience and self.epochs_without_gain >= self.config.patience:
            logger.info("stopping early: no better validation accuracy for %d epochs", self.config.patience)
            self.stopped_early = True

    def _finish_epoch_record(self) -> dict:
        """Train the remaining minibatches of `self.epoch_progress`, validate, and return the record."""
        config = self.config
        train = self.dataset.train
        progress = self.epoch_progress
        epoch = progress.epoch
        if progress.order is None:
            progress.order = torch.randperm(len(train), generator=self.generator)

        bar = tqdm(
            total=self.batches_per_epoch,
            initial=progress.batch,
            desc=f"epoch {epoch}/{config.epochs}",
            disable=not self.progress,
            leave=False,
            unit="batch",
        )
        while progress.batch < self.batches_per_epoch:
            start = time.perf_counter()
            index = progress.batch
            batch = progress.order[index * config.batch_size : (index + 1) * config.batch_size]
            self._set_learning_rate((epoch - 1) * self.batches_per_epoch + index)

            result = self.rule.train_batch(self.encoder(train.images[batch]), train.labels[batch])
            self._check_finite(result.loss, epoch, index)

            progress.loss_sum += result.loss * len(batch)
            progress.correct += result.correct
            progress.writes += result.weight_writes
            progress.spikes = [total + new for total, new in zip(progress.spikes, result.spikes_per_layer)]
            progress.batch += 1
            progress.seconds += time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(loss=f"{result.loss:.3f}", acc=f"{result.correct / len(batch):.3f}")

            batches_done = self.batches_done()
            if config.checkpoint_every and batches_done % config.checkpoint_every == 0:
                self.save_checkpoint()
            self._stop_if_requested()
        bar.close()

        start = time.perf_counter()
        if isinstance(self.rule, GlialRule) and epoch == config.epochs:
            progress.writes += self.rule.sleep()
        progress.seconds += time.perf_counter() - start
        self.train_seconds += progress.seconds

        validation = self._validate()
        alignment = self._measure_alignment()
        n_train = len(train)
        pruned, grown = _structure_totals(self.rule)
        layers = len(self.network.sizes) - 1
        previous = self.history[-1] if self.history else {"pruned_total": [0] * layers, "grown_total": [0] * layers}
        return {
            "epoch": epoch,
            "lr": self.rule.optimizer.param_groups[0]["lr"],
            "train_loss": progress.loss_sum / n_train,
            "train_accuracy": progress.correct / n_train,
            "train_firing_rate": None
            if isinstance(self.network, ReLUMLP)
            else [total / (n_train * config.steps * n) for total, n in zip(progress.spikes, config.hidden)],
            "samples_per_second": n_train / progress.seconds,
            "epoch_seconds": progress.seconds,
            "weight_writes_per_sample": progress.writes / n_train,
            "density": self._density(),
            "pruned": [after - before for after, before in zip(pruned, previous["pruned_total"])],
            "grown": [after - before for after, before in zip(grown, previous["grown_total"])],
            "pruned_total": pruned,
            "grown_total": grown,
            "threshold_mean": None
            if isinstance(self.network, ReLUMLP)
            else [float(layer.threshold.mean()) for layer in self.network.hidden],
            **_validation_fields(validation),
            "alignment_angle_deg": alignment.angle_deg if alignment else None,
            "sign_agreement": alignment.sign_agreement if alignment else None,
        }

    def batches_done(self) -> int:
        """Return the minibatches trained so far in the whole run."""
        return (self.epoch_progress.epoch - 1) * self.batches_per_epoch + self.epoch_progress.batch

    def state_dict(self) -> dict:
        """Return the whole state of the run, for a checkpoint."""
        return {
            "sizes": list(self.network.sizes),
            "network": dict(self.network.state_dict()),
            "rule": self.rule.state_dict(),
            "rng": {"generator": self.generator.get_state(), "torch": torch.get_rng_state()},
            "progress": self.epoch_progress.state_dict(),
            "best": {"accuracy": self.best_accuracy, "epoch": self.best_epoch, "state": self.best_state},
            "epochs_without_gain": self.epochs_without_gain,
            "stopped_early": self.stopped_early,
            "train_seconds": self.train_seconds,
            "history": self.history,
        }

    def load_state(self, state: dict, path: Path) -> None:
        """Restore a checkpoint's state; raise CheckpointError if it does not fit this run."""
        check_network_tensors(state["network"], self.network, path)
        try:
            self.network.load_state_dict(state["network"])
            self.rule.load_state_dict(state["rule"])
            self.generator.set_state(state["rng"]["generator"])
            torch.set_rng_state(state["rng"]["torch"])
            self.epoch_progress = EpochProgress.from_state(state["progress"])
            best = state["best"]
            self.best_accuracy = float(best["accuracy"])
            self.best_epoch = int(best["epoch"])
            self.best_state = best["state"]
            self.epochs_without_gain = int(state["epochs_without_gain"])
            self.stopped_early = bool(state["stopped_early"])
            self.train_seconds = float(state["train_seconds"])
            self.history = list(state["history"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{path} does not fit this run's configuration: {error}") from None

    def save_checkpoint(self) -> Path:
        """Write a checkpoint of the run's current state."""
        self.last_checkpoint = save_checkpoint(self.run_dir, self.batches_done(), self.state_dict())
        return self.last_checkpoint

    def _stop_if_requested(self) -> None:
        """Save a checkpoint and raise TrainingInterrupted if SIGINT or SIGTERM arrived."""
        received = self._stop.received
        if received is None:
            return
        if self.last_checkpoint != checkpoint_path(self.run_dir, self.batches_done()):
            self.save_checkpoint()
        progress = self.epoch_progress
        raise TrainingInterrupted(
            f"stopped by {received.name} at epoch {progress.epoch}, batch {progress.batch}; "
            f"checkpoint saved in {self.last_checkpoint}; continue with: microglia train --resume {self.run_dir}",
            int(received),
        )

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
        advice = f"start a new run with a smaller --lr (now {self.config.lr})"
        if self.last_checkpoint:
            advice += f"; the last good checkpoint is kept for microglia evaluate --weights: {self.last_checkpoint}"
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"training diverged: the loss became {loss} at epoch {epoch}, batch {batch}; {advice}"
            )
        for name, parameter in self.network.named_parameters():
            if not torch.isfinite(parameter).all():
                raise TrainingDivergedError(
                    f"training diverged: {name} contains NaN or infinite values after epoch {epoch}, "
                    f"batch {batch}; {advice}"
                )

    def _prepare_run_dir(self) -> None:
        run_dir = self.run_dir
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--out {run_dir} is a file, not a folder; choose another --out")
        if (run_dir / "summary.json").exists():
            raise ConfigError(
                f"run directory {run_dir} already contains a finished run; choose another --out, or remove it first"
            )
        if any((run_dir / name).exists() for name in ("config.toml", "metrics.jsonl", CHECKPOINT_DIR)):
            raise ConfigError(
                f"run directory {run_dir} already contains a run; continue it with --resume {run_dir}, "
                "choose another --out, or remove it first"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        # without `out`, the file repeats the run into a new directory
        self.config.replace(out=None).write_toml(run_dir / "config.toml")

    def _append_metrics(self, record: dict) -> None:
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def _rewrite_metrics(self) -> None:
        """Make metrics.jsonl match the restored history: a killed run may have written lines past its checkpoint."""
        lines = "".join(json.dumps(record) + "\n" for record in self.history)
        atomic_write_bytes(self.run_dir / "metrics.jsonl", lines.encode())

    def _write_results(self, test: Evaluation) -> None:
        config = self.config
        samples = sum(len(self.dataset.train) for _ in self.history)
        summary = {
            "test_accuracy": test.accuracy,
            "test_loss": test.loss,
            "test_synops_per_sample": test.synops_per_sample,
            "density": self._density(),
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_accuracy if self.best_accuracy >= 0 else None,
            "epochs_run": len(self.history),
            "train_seconds": self.train_seconds,
            "train_samples_per_second": samples / self.train_seconds,
            "test": test.to_dict(),
            "sizes": self.network.sizes,
            "config": config.to_dict(),
        }
        atomic_save_tensors(
            self.run_dir / "weights.safetensors",
            self.network.state_dict(),
            metadata={"sizes": json.dumps(self.network.sizes), "format": weights_format(self.network)},
        )
        atomic_write_bytes(self.run_dir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())


def train(config: TrainConfig, *, progress: bool = True) -> RunResult:
    """Train as `config` describes and return the result; see `Trainer`."""
    return Trainer(config, progress=progress).run()


def _warn_about_schedule(config: TrainConfig, batches_per_epoch: int) -> None:
    """Warn about glial settings that leave the weights or the density unchanged for most of the run."""
    if config.rule is not LearningRule.GLIA:
        return

    if config.sleep_interval > batches_per_epoch:
        logger.warning(
            "sleep interval %d is longer than an epoch (%d minibatches), so the weights change only every "
            "%.1f epochs; lower --sleep-interval or raise --epochs",
            config.sleep_interval,
            batches_per_epoch,
            config.sleep_interval / batches_per_epoch,
        )

    initial = config.density if config.initial_density is None else config.initial_density
    sleeps = config.epochs * batches_per_epoch // config.sleep_interval
    if initial != config.density and sleeps < config.structure_interval:
        logger.warning(
            "the run has %d sleeps, fewer than the %d of one structural step, so the density stays at %g and "
            "never reaches %g; lower --structure-interval or raise --epochs",
            sleeps,
            config.structure_interval,
            initial,
            config.density,
        )


def _reached_final_density(rule) -> bool:
    """Tell whether the rule's density schedule has reached its final density (always true without one)."""
    structure = getattr(rule, "structure", None)
    if structure is None or structure.schedule.is_constant:
        return True
    return structure.steps_done >= structure.schedule.decay_steps


def _structure_totals(rule) -> tuple[list[int], list[int]]:
    """Return the synapses pruned and grown per layer since training began (zeros for rules without structure)."""
    if isinstance(rule, GlialRule):
        return rule.pruned, rule.grown
    layers = len(rule.network.sizes) - 1
    return [0] * layers, [0] * layers


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
        text += f", validation firing rate [{rates}]"
    return text + f", {record['samples_per_second']:.0f} samples/s"
