"""The in-memory twin: the log contract with no durability, for tests and `memory://`."""

from __future__ import annotations

import asyncio

from eventlog.base import EventLog
from eventlog.clock import Clock, wall_clock_ms
from eventlog.records import AppendResult, Message, Record, TopicInfo

__all__ = ["MemoryLog"]


class _MemoryPartition:
    __slots__ = ("changed", "last_timestamp_ms", "records")

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.last_timestamp_ms = 0
        self.changed = asyncio.Event()


class MemoryLog(EventLog):
    """Topics held in Python lists; lost when the process ends."""

    def __init__(self, *, clock: Clock = wall_clock_ms) -> None:
        super().__init__()
        self._clock = clock
        self._partitions: dict[str, list[_MemoryPartition]] = {}

    async def _physical_create(self, info: TopicInfo) -> None:
        self._partitions[info.name] = [_MemoryPartition() for _ in range(info.partitions)]

    async def _physical_delete(self, name: str) -> None:
        del self._partitions[name]

    async def _physical_append(self, topic: str, partition: int, messages: list[Message]) -> AppendResult:
        part = self._partitions[topic][partition]
        timestamp_ms = max(self._clock(), part.last_timestamp_ms)
        part.last_timestamp_ms = timestamp_ms
        base = len(part.records)
        part.records.extend(
            Record(partition, base + i, timestamp_ms, m.key, m.value, tuple(m.headers)) for i, m in enumerate(messages)
        )
        part.changed.set()
        part.changed = asyncio.Event()
        return AppendResult(partition, base, len(messages), timestamp_ms)

    async def _physical_read(
        self, topic: str, partition: int, offset: int, max_records: int, wait_ms: int
    ) -> list[Record]:
        part = self._partitions[topic][partition]
        if offset >= len(part.records) and wait_ms > 0:
            try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races the event
                async with asyncio.timeout(wait_ms / 1000):
                    await part.changed.wait()
            except TimeoutError:
                return []
        return part.records[offset : offset + max_records]

    async def _physical_end_offsets(self, topic: str) -> list[int]:
        return [len(p.records) for p in self._partitions[topic]]

    async def _physical_close(self) -> None:
        for parts in self._partitions.values():
            for part in parts:
                part.changed.set()
