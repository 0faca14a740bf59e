"""Kafka mode against real Apache Kafka brokers: replicated nodes, broker and node faults, the Faust worker."""
