"""What the Kafka backend's parts share: client options, and Kafka errors turned into log errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiokafka.errors as kafka_errors

from eventlog import limits
from eventlog.errors import (
    CorruptLogError,
    InvalidRequestError,
    LimitExceededError,
    LogClosedError,
    LogError,
    TopicExistsError,
    TopicNotFoundError,
)

__all__ = ["ClientOptions", "error_for_code", "forget_topic", "to_log_error"]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Settings every aiokafka client of one `KafkaLog` is built with."""

    bootstrap_servers: str
    client_id: str = "agentlog"
    #: How long a request to a broker may take before it fails (also metadata waits).
    request_timeout_ms: int = 30_000
    #: How long the broker holds a fetch at the end of a partition: the longest a `seek` waits
    #: behind a fetch already in flight, and the interval of idle fetches of a tailing reader.
    fetch_max_wait_ms: int = 100
    #: Bytes one fetch returns per partition (at least one whole record batch, whatever its size).
    max_partition_fetch_bytes: int = 1024 * 1024
    #: Largest record batch (one append): the producer's batch size and the topics' max.message.bytes.
    max_batch_bytes: int = limits.MAX_BATCH_BYTES


_LIMIT_ERRORS = (kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordListTooLargeError)
_INVALID_ERRORS = (
    kafka_errors.InvalidTopicError,
    kafka_errors.InvalidReplicationFactorError,
    kafka_errors.InvalidPartitionsError,
    kafka_errors.InvalidConfigurationError,
    kafka_errors.InvalidRequestError,
    kafka_errors.PolicyViolationError,
)


def to_log_error(error: BaseException, what: str) -> LogError:
    """The log error that stands for a Kafka (aiokafka) error raised while doing `what`."""
    if isinstance(error, LogError):
        return error
    message = f"kafka: {what}: {type(error).__name__}: {error}"
    if isinstance(error, _LIMIT_ERRORS):
        return LimitExceededError(message)
    if isinstance(error, kafka_errors.TopicAlreadyExistsError):
        return TopicExistsError(message)
    if isinstance(error, kafka_errors.UnknownTopicOrPartitionError):
        return TopicNotFoundError(message)
    if isinstance(error, _INVALID_ERRORS):
        return InvalidRequestError(message)
    if isinstance(error, kafka_errors.ProducerClosed | kafka_errors.ConsumerStoppedError):
        return LogClosedError(message)
    if isinstance(error, kafka_errors.CorruptRecordException):
        return CorruptLogError(f"kafka:{what}", 0, str(error))
    return LogError(message)


def error_for_code(code: int, message: str | None, what: str) -> LogError:
    """The log error for a Kafka error code found in a response (e.g. CreateTopics)."""
    error_class = kafka_errors.for_code(code)
    return to_log_error(error_class(message or ""), what)


def forget_topic(client: Any, topic: str) -> None:
    """Stop an aiokafka client asking for a deleted topic's metadata.

    aiokafka's clients keep every topic they ever used in the set they refresh metadata for; once the
    topic is gone, every refresh logs "Topic ... not found in cluster metadata" at ERROR level and asks
    again. `AIOKafkaClient` has no public way to read that set, hence the guarded look at `_topics`.
    """
    topics = getattr(client, "_topics", None)
    if isinstance(topics, set) and topic in topics and len(topics) > 1:  # an empty set means "all topics"
        client.set_topics(sorted(topics - {topic}))
