"""The Kafka backend (aiokafka): `kafka://host:port[,host:port]`."""

from eventlog.kafka.log import KafkaLog

__all__ = ["KafkaLog"]
