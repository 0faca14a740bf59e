"""The values the log speaks in: messages to append, records read back, topics and positions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from eventlog import limits
from eventlog.errors import InvalidRequestError, LimitExceededError

__all__ = [
    "AppendResult",
    "Header",
    "Message",
    "Position",
    "Record",
    "TopicInfo",
    "check_messages",
    "check_topic_name",
]

Header = tuple[str, bytes]

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]+")


class Message(NamedTuple):
    """A record to append: the log stamps its offset and timestamp."""

    value: bytes
    key: bytes | None = None
    headers: tuple[Header, ...] = ()


class Record(NamedTuple):
    """A record read back from one partition of a topic."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[Header, ...]


class Position(NamedTuple):
    """Where a record sits: a partition and an offset in it."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class AppendResult:
    """The final place of an appended batch: `count` records from `base_offset`, all stamped `timestamp_ms`."""

    partition: int
    base_offset: int
    count: int
    timestamp_ms: int

    @property
    def positions(self) -> list[Position]:
        """The position of each appended record, in order."""
        return [Position(self.partition, self.base_offset + i) for i in range(self.count)]

    @property
    def next_offset(self) -> int:
        """The offset after the batch's last record."""
        return self.base_offset + self.count


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic: its partition count and, for a branch, the parent it reads up to `fork_cut`."""

    name: str
    partitions: int
    parent: str | None = None
    fork_cut: tuple[int, ...] | None = None

    def base_offset(self, partition: int) -> int:
        """The first offset this topic stores itself in `partition` (0, or the fork cut for a branch)."""
        return 0 if self.fork_cut is None else self.fork_cut[partition]


def check_topic_name(name: str) -> None:
    """Raise InvalidRequestError unless `name` is a valid topic name."""
    if not isinstance(name, str) or not _TOPIC_NAME.fullmatch(name):
        raise InvalidRequestError(f"topic name {name!r} must match [A-Za-z0-9._-]+")
    if len(name) > limits.MAX_TOPIC_NAME_BYTES:
        raise InvalidRequestError(f"topic name longer than {limits.MAX_TOPIC_NAME_BYTES} bytes")
    if name in (".", ".."):
        raise InvalidRequestError(f"topic name {name!r} is reserved")


def check_messages(messages: list[Message]) -> int:
    """Check a batch against the limits; return its payload size in bytes."""
    if not messages:
        raise InvalidRequestError("an append needs at least one record")
    if len(messages) > limits.MAX_BATCH_RECORDS:
        raise LimitExceededError(f"batch of {len(messages)} records exceeds {limits.MAX_BATCH_RECORDS}")
    total = 0
    max_value, max_key = limits.MAX_VALUE_BYTES, limits.MAX_KEY_BYTES
    for value, key, headers in messages:
        if type(value) is not bytes:
            raise InvalidRequestError("record value must be bytes")
        size = len(value)
        if size > max_value:
            raise LimitExceededError(f"record value of {size} bytes exceeds {max_value}")
        total += size
        if key is not None:
            if type(key) is not bytes:
                raise InvalidRequestError("record key must be bytes or None")
            if len(key) > max_key:
                raise LimitExceededError(f"record key of {len(key)} bytes exceeds {max_key}")
            total += len(key)
        if headers:
            total += _check_headers(headers)
    if total > limits.MAX_BATCH_BYTES // 2:
        raise LimitExceededError(f"batch of {total} bytes exceeds {limits.MAX_BATCH_BYTES // 2}")
    return total


def _check_headers(headers: tuple[Header, ...]) -> int:
    """Check one record's headers against the limits; return their size in bytes."""
    if len(headers) > limits.MAX_HEADERS_PER_RECORD:
        raise LimitExceededError(f"{len(headers)} headers exceed {limits.MAX_HEADERS_PER_RECORD}")
    total = 0
    for name, header_value in headers:
        if not isinstance(name, str) or not isinstance(header_value, bytes):
            raise InvalidRequestError("a header is a (str, bytes) pair")
        if len(name.encode()) > limits.MAX_HEADER_NAME_BYTES:
            raise LimitExceededError(f"header name exceeds {limits.MAX_HEADER_NAME_BYTES} bytes")
        if len(header_value) > limits.MAX_HEADER_VALUE_BYTES:
            raise LimitExceededError(f"header value exceeds {limits.MAX_HEADER_VALUE_BYTES} bytes")
        total += len(name) + len(header_value)
    return total
