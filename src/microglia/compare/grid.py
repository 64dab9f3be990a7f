"""A comparison grid: learning rules x feedback kinds x consolidation rules x sleep intervals x seeds.

Feedback kind, consolidation rule and sleep interval act on the `glia` rule only, so every
other rule gives one configuration per seed whatever those axes hold.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microglia.errors import ConfigError
from microglia.glia import ConsolidationRule, FeedbackKind
from microglia.training.config import LearningRule, TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

AXES = ("rule", "feedback", "consolidation", "sleep_interval")
"""The TrainConfig fields that a grid varies; `seed` is varied through `seeds`."""

GRID_KEYS = (*AXES, "seeds", "workers", "out")
"""Keys of a grid file that are not passed through to every run's TrainConfig."""


@dataclass
class Grid:
    """What `microglia compare` runs: every combination of the axes, each over `seeds` seeds.

    `settings` contains the other TrainConfig fields, shared by every run.
    """

    rule: list[LearningRule] = field(default_factory=lambda: [LearningRule.GLIA])
    feedback: list[FeedbackKind] = field(default_factory=lambda: [FeedbackKind.SIGN])
    consolidation: list[ConsolidationRule] = field(default_factory=lambda: [ConsolidationRule.ADAM])
    sleep_interval: list[int] = field(default_factory=lambda: [1])
    seeds: int = 1
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rule = _as_choices("rule", self.rule, LearningRule)
        self.feedback = _as_choices("feedback", self.feedback, FeedbackKind)
        self.consolidation = _as_choices("consolidation", self.consolidation, ConsolidationRule)
        self.sleep_interval = _as_list("sleep_interval", self.sleep_interval)
        for value in self.sleep_interval:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"sleep_interval: expected integers >= 1, got {value!r}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ConfigError(f"seeds: expected a number of seeds >= 1 (seeds 0 to seeds-1 run), got {self.seeds!r}")
        clashes = sorted(set(self.settings) & {*AXES, "seed", "out"})
        if clashes:
            names = ", ".join(clashes)
            raise ConfigError(f"settings: the grid itself sets {names}; remove {names} from the settings")
        # validate the shared settings once, before any run starts
        TrainConfig.from_dict(self.settings)

    def configurations(self) -> list[Configuration]:
        """Return the grid's distinct configurations, in the order of the axes as given."""
        configurations: list[Configuration] = []
        for rule in self.rule:
            if rule is not LearningRule.GLIA:
                configurations.append(Configuration(rule))
                continue
            for feedback in self.feedback:
                for consolidation in self.consolidation:
                    for sleep_interval in self.sleep_interval:
                        configurations.append(Configuration(rule, feedback, consolidation, sleep_interval))
        return configurations

    def run_config(self, configuration: Configuration, seed: int, out: Path) -> TrainConfig:
        """Return the TrainConfig of one run of `configuration` with `seed`, writing to `out`."""
        values = dict(self.settings, rule=configuration.rule, seed=seed, out=str(out))
        if configuration.rule is LearningRule.GLIA:
            values.update(
                feedback=configuration.feedback,
                consolidation=configuration.consolidation,
                sleep_interval=configuration.sleep_interval,
            )
        return TrainConfig.from_dict(values)


@dataclass(frozen=True)
class Configuration:
    """One point of the grid. Feedback, consolidation and sleep interval are None for rules other than glia."""

    rule: LearningRule
    feedback: FeedbackKind | None = None
    consolidation: ConsolidationRule | None = None
    sleep_interval: int | None = None

    @property
    def label(self) -> str:
        """A short name, also the run folder: `glia-sign-adam-K1`, `bptt`."""
        if self.rule is not LearningRule.GLIA:
            return self.rule.value
        return f"glia-{self.feedback.value}-{self.consolidation.value}-K{self.sleep_interval}"


def read_grid_file(path: str | Path) -> dict[str, Any]:
    """Read a grid TOML file into a flat mapping.

    Keys `rule`, `feedback`, `consolidation` and `sleep_interval` take a list (or one value).
    `seeds` is the number of seeds, `workers` the number of parallel processes and `out` the
    output folder. Every other key is a TrainConfig setting shared by all runs.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"grid file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"grid file {path} is not valid TOML: {error}") from None


def grid_from_values(values: dict[str, Any]) -> Grid:
    """Build a Grid from a flat mapping (a grid file with command-line values merged in)."""
    axes = {key: values[key] for key in (*AXES, "seeds") if key in values}
    settings = {key: value for key, value in values.items() if key not in GRID_KEYS}
    return Grid(**axes, settings=settings)


def _as_list(name: str, value: Any) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ConfigError(f"{name}: expected at least one value, got an empty list")
    return values


def _as_choices(name: str, value: Any, enum_type) -> list:
    choices = []
    for item in _as_list(name, value):
        try:
            choices.append(enum_type(item))
        except ValueError:
            allowed = ", ".join(member.value for member in enum_type)
            raise ConfigError(f"{name}: expected values from {allowed}, got {item!r}") from None
    return list(dict.fromkeys(choices))
