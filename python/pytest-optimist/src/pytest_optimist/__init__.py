"""pytest fixtures for optimist (see docs/testing.md): the node, and its test API."""

from .node import OptimistNode, start_node

__all__ = ["OptimistNode", "start_node"]
