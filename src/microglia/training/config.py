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
from microglia.glia import ConsolidationRule, FeedbackKind
from microglia.neurons import Reset, Surrogate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


class LearningRule(str, enum.Enum):
    """How the network learns."""

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
    hidden: tuple[int, ...] = (200,)
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

    # run
    batch_size: int = 32
    epochs: int = 30
    patience: int = 0
    """Stop after this many epochs without a better validation accuracy; 0 never stops early."""
    seed: int = 0
    threads: int = 0
    """Torch intra-op threads; 0 keeps torch's default (one per physical core)."""
    out: str | None = None

    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        for name in _ENUM_TYPES:
            _coerce_enum(self, name)
        if self.burn_in is None:
            self.burn_in = self.steps // 4
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid field, its value and the allowed range."""
        _check_range("validation_fraction", self.validation_fraction, 0.0, 0.5)
        if not self.hidden or any(not isinstance(n, int) or n < 1 for n in self.hidden):
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
        _check_positive("perturbation_sigma", self.perturbation_sigma)
        _check_int("perturbation_pairs", self.perturbation_pairs, 1)
        _check_int("perturbation_rank", self.perturbation_rank, 0)
        _check_int("alignment_probe", self.alignment_probe, 0)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("epochs", self.epochs, 1)
        _check_int("patience", self.patience, 0)
        _check_int("seed", self.seed, 0)
        _check_int("threads", self.threads, 0)
        if self.extra:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(self.extra))}")

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
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"configuration file {path} is not valid TOML: {error}") from None
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
}


def _coerce_enum(config: TrainConfig, name: str) -> None:
    """Turn a string setting into its enum type, or raise ConfigError listing the choices."""
    enum_type = _ENUM_TYPES[name]
    value = getattr(config, name)
    try:
        setattr(config, name, enum_type(value))
    except ValueError:
        choices = ", ".join(member.value for member in enum_type)
        raise ConfigError(f"{name}: expected one of {choices}, got {value!r}") from None


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}: expected a finite number > 0, got {value!r}")


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
