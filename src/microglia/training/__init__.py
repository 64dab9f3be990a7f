"""Training runs: configuration, the training loop, evaluation and run files."""

from microglia.training.config import LearningRule, Schedule, TrainConfig
from microglia.training.evaluate import Evaluation, evaluate
from microglia.training.trainer import RunResult, Trainer, build_network, build_rule, train

__all__ = [
    "Evaluation",
    "LearningRule",
    "RunResult",
    "Schedule",
    "TrainConfig",
    "Trainer",
    "build_network",
    "build_rule",
    "evaluate",
    "train",
]
