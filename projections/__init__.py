"""agentlog projections layer."""
