"""The glial learning pathway: traces, feedback, tags, consolidation and the wake/sleep rule."""

from microglia.glia.consolidation import ConsolidationRule, Consolidator, ScheduledRprop, SignSGD, make_optimizer
from microglia.glia.feedback import FeedbackKind, FeedbackPathway
from microglia.glia.learner import GlialLearner, WakeResult
from microglia.glia.rule import BatchResult, GlialRule
from microglia.glia.tags import GlialTags
from microglia.glia.traces import constant_input_coefficients, decay_matrix, filter_traces

__all__ = [
    "BatchResult",
    "ConsolidationRule",
    "Consolidator",
    "FeedbackKind",
    "FeedbackPathway",
    "GlialLearner",
    "GlialRule",
    "GlialTags",
    "ScheduledRprop",
    "SignSGD",
    "WakeResult",
    "constant_input_coefficients",
    "decay_matrix",
    "filter_traces",
    "make_optimizer",
]
