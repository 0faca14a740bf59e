"""Infrastructure helpers for agentlog (local Kafka broker launcher, CI support)."""
