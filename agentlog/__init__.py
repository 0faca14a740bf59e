"""agentlog: the public Python package (edge embedders, the `Memory` client)."""
