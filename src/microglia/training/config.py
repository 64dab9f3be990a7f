"""The one validated configuration of a training run, read from TOML and command-line overrides."""

from __future__ import annotations

import dataclasses
import enum
import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from microglia.encoding import Encoding
from microglia.errors import ConfigError
from microglia.glia import ConsolidationRule, FeedbackKind, Regrowth
from microglia.neurons import Reset, Surrogate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FLOAT32_MAX = 3.4028234663852886e38
"""Largest float32 value: weights are float32, so a larger rate or scale cannot act on them."""


class LearningRule(str, enum.Enum):
    """Learning rule that trains the network."""

    GLIA = "glia"
    BPTT = "bptt"
    PERTURBATION = "perturbation"
    ANN = "ann"


class Schedule(str, enum.Enum):
    """Learning-rate schedule over the whole run."""

    CONSTANT = "constant"
    COSINE = "cosine"


@dataclass
class TrainConfig:
    """Every setting of a training run. The defaults train `digits` with sign feedback.

    Time is counted in steps: `steps` per sample, `burn_in` of them without error or loss.
    """

    # data
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    validation_fraction: float = 0.1

    # network
    hidden: tuple[int, ...] = (500,)
    steps: int = 10
    burn_in: int | None = None
    """Steps without error or loss at the start of each sample; None means steps // 4."""
    encoding: Encoding = Encoding.DIRECT
    beta: float = 0.9
    kappa: float = 0.9
    threshold: float = 1.0
    reset: Reset = Reset.SUBTRACT
    surrogate: Surrogate = Surrogate.TRIANGLE
    gamma: float = 1.0
    init_scale: float = 2.0

    # learning
    rule: LearningRule = LearningRule.GLIA
    feedback: FeedbackKind = FeedbackKind.SIGN
    consolidation: ConsolidationRule = ConsolidationRule.ADAM
    lr: float = 2e-3
    schedule: Schedule = Schedule.COSINE
    sleep_interval: int = 1
    chunk_steps: int = 10
    perturbation_sigma: float = 0.05
    perturbation_pairs: int = 20
    perturbation_rank: int = 0
    """Rank of each weight perturbation of the perturbation rule; 0 draws full-rank ones."""
    alignment_probe: int = 256
    """Validation samples on which glia runs measure update-gradient alignment each epoch; 0 skips it."""

    # structural plasticity and homeostasis (glia rule only)
    density: float = 1.0
    """Fraction of possible synapses present at the end of training; 1.0 keeps the network dense."""
    initial_density: float | None = None
    """Density at the start; None means `density`. When they differ, a cosine schedule joins them."""
    density_decay: float = 0.75
    """Fraction of the run over which the cosine schedule moves from `initial_density` to `density`."""
    prune_fraction: float = 0.1
    prune_schedule: Schedule = Schedule.CONSTANT
    """`cosine` decays the exchanged fraction from `prune_fraction` to 0 over the run."""
    regrowth: Regrowth = Regrowth.GUIDED
    territory_size: int = 50
    structure_interval: int = 100
    """Sleeps between two structural steps."""
    target_rate: float = 0.0
    """Homeostatic target firing rate in spikes per step; 0 turns homeostasis off."""
    homeostasis_rate: float = 0.1

    # run
    batch_size: int = 32
    epochs: int = 30
    patience: int = 0
    """Stop after this many epochs without a better validation accuracy; 0 never stops early."""
    seed: int = 0
    threads: int = 0
    """Torch intra-op threads; 0 keeps torch's default (one per physical core)."""
    checkpoint_every: int = 1000
    """Minibatches between two checkpoints; 0 checkpoints at epoch ends only. Results do not depend on it."""
    out: str | None = None
    """Run directory. It is not written into the run's config.toml, so a repeat gets a new directory."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.hidden, (list, tuple)):
            self.hidden = tuple(self.hidden)
        else:
            single = isinstance(self.hidden, int) and not isinstance(self.hidden, bool)
            example = f"[{self.hidden}]" if single else "[500] or [800, 800]"
            raise ConfigError(f"hidden: expected a list of positive layer widths such as {example}, got {self.hidden!r}")
        for name in _ENUM_TYPES:
            _coerce_enum(self, name)
        if self.burn_in is None:
            _check_int("steps", self.steps, 1)
            self.burn_in = self.steps // 4
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field, its value and the allowed range."""
        _check_text("dataset", self.dataset)
        _check_text("data_dir", self.data_dir, optional=True)
        _check_text("out", self.out, optional=True)
        if not isinstance(self.download, bool):
            raise ConfigError(f"download: expected true or false, got {self.download!r}")
        _check_range("validation_fraction", self.validation_fraction, 0.0, 0.5)
        if not self.hidden or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.hidden):
            raise ConfigError(f"hidden: expected one or more positive layer widths, got {self.hidden!r}")
        _check_int("steps", self.steps, 1)
        _check_int("burn_in", self.burn_in, 0)
        if self.burn_in >= self.steps:
            raise ConfigError(f"burn_in: expected fewer than steps ({self.steps}), got {self.burn_in}")
        _check_range("beta", self.beta, 0.0, 1.0, low_open=True)
        _check_range("kappa", self.kappa, 0.0, 1.0, low_open=True)
        _check_positive("threshold", self.threshold)
        _check_positive("gamma", self.gamma)
        _check_positive("init_scale", self.init_scale)
        _check_positive("lr", self.lr)
        _check_int("sleep_interval", self.sleep_interval, 1)
        _check_int("chunk_steps", self.chunk_steps, 1)
        self._validate_structure()
        _check_positive("perturbation_sigma", self.perturbation_sigma)
        _check_int("perturbation_pairs", self.perturbation_pairs, 1)
        _check_int("perturbation_rank", self.perturbation_rank, 0)
        _check_int("alignment_probe", self.alignment_probe, 0)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("epochs", self.epochs, 1)
        _check_int("patience", self.patience, 0)
        _check_int("seed", self.seed, 0)
        _check_int("threads", self.threads, 0)
        _check_int("checkpoint_every", self.checkpoint_every, 0)
        if self.extra:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(self.extra))}")

    def _validate_structure(self) -> None:
        _check_range("density", self.density, 0.0, 1.0, low_open=True)
        if self.initial_density is not None:
            _check_range("initial_density", self.initial_density, 0.0, 1.0, low_open=True)
        _check_range("density_decay", self.density_decay, 0.0, 1.0, low_open=True)
        _check_range("prune_fraction", self.prune_fraction, 0.0, 1.0)
        _check_int("territory_size", self.territory_size, 1)
        _check_int("structure_interval", self.structure_interval, 1)
        _check_range("target_rate", self.target_rate, 0.0, 1.0)
        if self.target_rate == 1.0:
            raise ConfigError("target_rate: expected a rate below 1.0 (0 turns homeostasis off), got 1.0")
        _check_positive("homeostasis_rate", self.homeostasis_rate)
        if self.rule is not LearningRule.GLIA:
            rule = self.rule.value
            sparse = self.density < 1.0 or (self.initial_density is not None and self.initial_density < 1.0)
            if sparse:
                raise ConfigError(
                    "density: pruning and growth are part of the glia rule; "
                    f"expected density 1.0 and no initial_density with rule {rule}"
                )
            if self.target_rate > 0.0:
                raise ConfigError(f"target_rate: homeostasis is part of the glia rule; expected 0 with rule {rule}")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain TOML-compatible values (None values left out)."""
        values = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            values[f.name] = value
        return values

    def replace(self, **changes: Any) -> TrainConfig:
        """Return a copy with some settings changed, validated."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build a configuration from a mapping; unknown keys raise ConfigError."""
        known = {f.name for f in fields(cls)} - {"extra"}
        unknown = {key: value for key, value in values.items() if key not in known}
        settings = {key: value for key, value in values.items() if key in known}
        try:
            return cls(**settings, extra=unknown)
        except TypeError as error:
            raise ConfigError(f"invalid configuration: {error}") from None

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a TOML file, apply `overrides` (settings given on the command line), validate."""
        path = Path(path)
        try:
            with path.open("rb") as file:
                values = tomllib.load(file)
        except FileNotFoundError:
            raise ConfigError(f"configuration file not found: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"configuration file {path} is not valid TOML: {error}") from None
        except OSError as error:
            raise ConfigError(f"cannot read configuration file {path}: {error.strerror}") from None
        values.update(overrides)
        return cls.from_dict(values)

    def write_toml(self, path: str | Path) -> None:
        """Write the resolved settings as TOML, atomically."""
        from microglia.training.files import atomic_write_bytes

        atomic_write_bytes(Path(path), tomli_w.dumps(self.to_dict()).encode())


_ENUM_TYPES = {
    "encoding": Encoding,
    "reset": Reset,
    "surrogate": Surrogate,
    "rule": LearningRule,
    "feedback": FeedbackKind,
    "consolidation": ConsolidationRule,
    "schedule": Schedule,
    "regrowth": Regrowth,
    "prune_schedule": Schedule,
}


def _coerce_enum(config: TrainConfig, name: str) -> None:
    """Turn a string setting into its enum type, or raise ConfigError listing the choices."""
    enum_type = _ENUM_TYPES[name]
    value = getattr(config, name)
    try:
        setattr(config, name, enum_type(value))
    except (ValueError, TypeError):
        choices = ", ".join(member.value for member in enum_type)
        raise ConfigError(f"{name}: expected one of {choices}, got {value!r}") from None


def _check_text(name: str, value: Any, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name}: expected a non-empty string, got {value!r}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}: expected a finite number > 0, got {value!r}")
    if value > FLOAT32_MAX:
        raise ConfigError(f"{name}: expected a number that fits float32 (at most {FLOAT32_MAX:.4g}), got {value!r}")


def _check_range(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> None:
    valid = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and value <= high
    )
    if not valid:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{name}: expected a number in {bracket}{low}, {high}], got {value!r}")
