"""Errors of the log layer.

LogError
 ├── TopicExistsError        a topic of that name exists already
 ├── TopicNotFoundError      no topic of that name
 ├── TopicInUseError         a branch still reads this topic
 ├── InvalidRequestError     a bad name, partition, offset or cut
 ├── LimitExceededError      a record or batch over a named limit
 ├── CorruptLogError         bytes on disk fail their checksum or framing (names file and offset)
 ├── LogClosedError          the log was closed
 ├── RecordsDeletedError     the records asked for were deleted (Kafka retention moved the start)
 └── LogFailedError          a write or fsync failed: the log accepts no more writes, ever
"""

from __future__ import annotations

__all__ = [
    "CorruptLogError",
    "InvalidRequestError",
    "LimitExceededError",
    "LogClosedError",
    "LogError",
    "LogFailedError",
    "RecordsDeletedError",
    "TopicExistsError",
    "TopicInUseError",
    "TopicNotFoundError",
]


class LogError(Exception):
    """Base class of every error the log raises."""


class TopicExistsError(LogError):
    """A topic of that name exists already."""


class TopicNotFoundError(LogError):
    """No topic of that name."""


class TopicInUseError(LogError):
    """The topic cannot be deleted while a branch reads it."""


class InvalidRequestError(LogError):
    """A malformed request: bad topic name, partition, offset or cut."""


class LimitExceededError(LogError):
    """A record or batch exceeds a named limit of `eventlog.limits`."""


class CorruptLogError(LogError):
    """Stored bytes fail their checksum or framing somewhere other than a torn tail."""

    def __init__(self, path: str, position: int, reason: str) -> None:
        super().__init__(f"corrupt log: {path} at byte {position}: {reason}")
        self.path = path
        self.position = position
        self.reason = reason


class LogClosedError(LogError):
    """The log was closed."""


class RecordsDeletedError(LogError):
    """The offset asked for is below the partition's start: its records were deleted (retention)."""

    def __init__(self, topic: str, partition: int, offset: int, start: int) -> None:
        super().__init__(
            f"{topic}/{partition}: records below offset {start} were deleted (retention or delete-records); "
            f"offset {offset} cannot be read: rebuild from a snapshot at or past {start}, or keep the log longer"
        )
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.start = start


class LogFailedError(LogError):
    """A write or fsync failed; the log refuses every later write (it never retries an fd)."""
