"""agentlog query_api layer."""
