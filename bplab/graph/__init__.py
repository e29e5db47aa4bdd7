"""Networks as data: spec -> validated plan -> executor."""

from bplab.graph.network import DTYPES, Network, resolve_dtype
from bplab.graph.plan import NodeSpec, Plan, analyze

__all__ = ["DTYPES", "Network", "NodeSpec", "Plan", "analyze", "resolve_dtype"]
