"""Reference learning rules that the glial pathway is measured against."""

from microglia.baselines.bptt import BPTTRule

__all__ = ["BPTTRule"]
