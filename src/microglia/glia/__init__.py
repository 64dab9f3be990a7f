"""The glial learning pathway: traces, feedback, tags, consolidation, structure, homeostasis and the wake/sleep rule."""

from microglia.glia.density import DensitySchedule
from microglia.glia.consolidation import ConsolidationRule, Consolidator, ScheduledRprop, SignSGD, make_optimizer
from microglia.glia.feedback import FeedbackKind, FeedbackPathway
from microglia.glia.homeostasis import Homeostasis
from microglia.glia.learner import GlialLearner, WakeResult
from microglia.glia.rule import BatchResult, GlialRule
from microglia.glia.structure import Regrowth, StructuralPlasticity
from microglia.glia.tags import GlialTags
from microglia.glia.writes import WriteCounter
from microglia.glia.traces import constant_input_coefficients, decay_matrix, filter_traces

__all__ = [
    "BatchResult",
    "ConsolidationRule",
    "Consolidator",
    "DensitySchedule",
    "FeedbackKind",
    "FeedbackPathway",
    "GlialLearner",
    "GlialRule",
    "GlialTags",
    "Homeostasis",
    "Regrowth",
    "ScheduledRprop",
    "SignSGD",
    "StructuralPlasticity",
    "WakeResult",
    "WriteCounter",
    "constant_input_coefficients",
    "decay_matrix",
    "filter_traces",
    "make_optimizer",
]
