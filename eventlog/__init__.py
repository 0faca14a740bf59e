"""agentlog eventlog layer."""
