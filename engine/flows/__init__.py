"""The flow engine: flow definitions (trigger, nodes, edges)."""

from engine.flows.spec import FLOW_SCHEMA_VERSION, Edge, FlowSpec, NodeSpec, Trigger

__all__ = ["FLOW_SCHEMA_VERSION", "Edge", "FlowSpec", "NodeSpec", "Trigger"]
