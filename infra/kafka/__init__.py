"""Plain Apache Kafka on loopback without Docker: see ``infra.kafka.launcher``."""
