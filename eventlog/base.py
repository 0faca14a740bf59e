"""The log contract: every backend (memory, embedded files, Kafka) implements `EventLog`.

The public methods live here and do what is common to all backends: validation, limits and branch
topics. A backend implements the `_physical_*` primitives over its own storage, where each topic's
partitions count offsets from 0; a branch's own records sit at logical offset `fork_cut[p] + n`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from eventlog import limits
from eventlog.errors import (
    InvalidRequestError,
    LimitExceededError,
    LogClosedError,
    TopicExistsError,
    TopicInUseError,
    TopicNotFoundError,
)
from eventlog.records import AppendResult, Message, Record, TopicInfo, check_messages, check_topic_name

__all__ = ["EventLog"]


class EventLog(abc.ABC):
    """A set of topics of partitioned, append-only, durable records."""

    def __init__(self) -> None:
        self._topics: dict[str, TopicInfo] = {}
        self._closed = False

    # ----------------------------------------------------------------------------------- topics

    async def create_topic(self, name: str, partitions: int = limits.DEFAULT_PARTITIONS) -> TopicInfo:
        """Create a topic with `partitions` partitions (fixed for its life)."""
        self._check_open()
        check_topic_name(name)
        if not isinstance(partitions, int) or not 1 <= partitions <= limits.MAX_PARTITIONS:
            raise InvalidRequestError(f"partitions must be within 1..{limits.MAX_PARTITIONS}")
        if name in self._topics:
            raise TopicExistsError(f"topic {name!r} exists")
        info = TopicInfo(name=name, partitions=partitions)
        await self._physical_create(info)
        self._topics[name] = info
        return info

    async def create_branch(self, name: str, parent: str, cut: Sequence[int]) -> TopicInfo:
        """Create topic `name` that reads `parent` below `cut` (one offset per partition), then its own records.

        Nothing is copied: creation costs the same whatever the parent holds.
        """
        self._check_open()
        check_topic_name(name)
        if name in self._topics:
            raise TopicExistsError(f"topic {name!r} exists")
        parent_info = self.topic(parent)
        fork_cut = tuple(cut)
        if len(fork_cut) != parent_info.partitions:
            raise InvalidRequestError(
                f"cut has {len(fork_cut)} offsets; {parent!r} has {parent_info.partitions} partitions"
            )
        ends = await self.end_offsets(parent)
        for partition, (offset, end) in enumerate(zip(fork_cut, ends, strict=True)):
            if not isinstance(offset, int) or not 0 <= offset <= end:
                raise InvalidRequestError(f"cut offset {offset!r} of partition {partition} outside 0..{end}")
        info = TopicInfo(name=name, partitions=parent_info.partitions, parent=parent, fork_cut=fork_cut)
        await self._physical_create(info)
        self._topics[name] = info
        return info

    async def delete_topic(self, name: str) -> None:
        """Delete a topic and its records; refused while a branch reads it."""
        self._check_open()
        self.topic(name)
        children = sorted(t.name for t in self._topics.values() if t.parent == name)
        if children:
            raise TopicInUseError(f"topic {name!r} is the parent of {', '.join(children)}")
        await self._physical_delete(name)
        del self._topics[name]

    def topic(self, name: str) -> TopicInfo:
        """The topic named `name`, or TopicNotFoundError."""
        try:
            return self._topics[name]
        except KeyError:
            raise TopicNotFoundError(f"no topic {name!r}") from None

    def topics(self) -> list[TopicInfo]:
        """Every topic, sorted by name."""
        return [self._topics[name] for name in sorted(self._topics)]

    # ----------------------------------------------------------------------------------- records

    async def append(self, topic: str, partition: int, messages: Sequence[Message]) -> AppendResult:
        """Append a batch to one partition, atomically; return once it is durable under the fsync policy."""
        self._check_open()
        info = self.topic(topic)
        self._check_partition(info, partition)
        batch = list(messages)
        check_messages(batch)
        result = await self._physical_append(topic, partition, batch)
        return AppendResult(
            partition, info.base_offset(partition) + result.base_offset, result.count, result.timestamp_ms
        )

    async def read(
        self,
        topic: str,
        partition: int,
        offset: int,
        *,
        max_records: int = 1000,
        wait_ms: int = 0,
    ) -> list[Record]:
        """Up to `max_records` records from `offset` on; waits up to `wait_ms` if there are none yet."""
        self._check_open()
        info = self.topic(topic)
        self._check_partition(info, partition)
        if not isinstance(offset, int) or offset < 0:
            raise InvalidRequestError(f"offset {offset!r} must be a non-negative integer")
        if not 1 <= max_records <= limits.MAX_READ_RECORDS:
            raise LimitExceededError(f"max_records must be within 1..{limits.MAX_READ_RECORDS}")
        if not 0 <= wait_ms <= limits.MAX_WAIT_MS:
            raise LimitExceededError(f"wait_ms must be within 0..{limits.MAX_WAIT_MS}")
        base = info.base_offset(partition)
        if offset < base:
            if info.parent is None:
                raise InvalidRequestError(f"offset {offset} of {topic}/{partition} is below its base {base}")
            return await self.read(info.parent, partition, offset, max_records=min(max_records, base - offset))
        records = await self._physical_read(topic, partition, offset - base, max_records, wait_ms)
        if base == 0 or not records:
            return records
        return [record._replace(offset=record.offset + base) for record in records]

    async def end_offsets(self, topic: str) -> list[int]:
        """The offset after the last durable record, per partition."""
        self._check_open()
        info = self.topic(topic)
        ends = await self._physical_end_offsets(topic)
        return [info.base_offset(p) + end for p, end in enumerate(ends)]

    async def close(self) -> None:
        """Flush what is pending and release files and connections; idempotent."""
        if not self._closed:
            self._closed = True
            await self._physical_close()

    def failure(self) -> str | None:
        """Why the log accepts no more writes (a failed write or fsync), or None while it works."""
        return None

    async def __aenter__(self) -> EventLog:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----------------------------------------------------------------------------------- helpers

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError("the log is closed")

    @staticmethod
    def _check_partition(info: TopicInfo, partition: int) -> None:
        if not isinstance(partition, int) or not 0 <= partition < info.partitions:
            raise InvalidRequestError(f"partition {partition!r} outside 0..{info.partitions - 1} of {info.name!r}")

    # ----------------------------------------------------------------------------------- backend

    @abc.abstractmethod
    async def _physical_create(self, info: TopicInfo) -> None:
        """Create storage (and persist metadata) for a new topic or branch."""

    @abc.abstractmethod
    async def _physical_delete(self, name: str) -> None:
        """Remove a topic's storage and metadata."""

    @abc.abstractmethod
    async def _physical_append(self, topic: str, partition: int, messages: list[Message]) -> AppendResult:
        """Append to the topic's own storage; offsets in the result count from the topic's own 0."""

    @abc.abstractmethod
    async def _physical_read(
        self, topic: str, partition: int, offset: int, max_records: int, wait_ms: int
    ) -> list[Record]:
        """Read the topic's own records from own offset `offset`; wait up to `wait_ms` for some."""

    @abc.abstractmethod
    async def _physical_end_offsets(self, topic: str) -> list[int]:
        """Own durable end offset per partition."""

    @abc.abstractmethod
    async def _physical_close(self) -> None:
        """Release resources."""
