"""The one contract test class every log backend runs (memory, embedded files, Kafka).

A backend's test module subclasses `EventLogContract` and implements `open_log`; everything below
then runs against it unchanged.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator

import pytest

from eventlog import limits
from eventlog.base import EventLog
from eventlog.errors import (
    InvalidRequestError,
    LimitExceededError,
    LogClosedError,
    TopicExistsError,
    TopicInUseError,
    TopicNotFoundError,
)
from eventlog.records import Message


def payload(index: int, size: int = 40) -> bytes:
    """Distinct, recognisable bytes for record `index`."""
    seed = f"record-{index}-".encode()
    return (seed * (size // len(seed) + 1))[:size]


class EventLogContract(abc.ABC):
    """Behaviour every backend must show; subclasses provide `open_log`."""

    pytestmark = pytest.mark.anyio

    @abc.abstractmethod
    async def open_log(self) -> EventLog:
        """A fresh, empty log (unique topics are enough for shared brokers)."""

    def topic_name(self, base: str) -> str:
        """A topic name unique to this test (shared brokers outlive a test)."""
        return base

    @pytest.fixture
    async def log(self) -> AsyncIterator[EventLog]:
        log = await self.open_log()
        try:
            yield log
        finally:
            await log.close()

    # ----------------------------------------------------------------------------------- topics

    async def test_create_and_list_topics(self, log: EventLog) -> None:
        a, b = self.topic_name("alpha"), self.topic_name("beta")
        await log.create_topic(b, 3)
        info = await log.create_topic(a, 2)
        assert (info.name, info.partitions, info.parent) == (a, 2, None)
        names = [t.name for t in log.topics()]
        assert names.index(a) < names.index(b)
        assert log.topic(b).partitions == 3
        assert await log.end_offsets(a) == [0, 0]

    async def test_topic_errors(self, log: EventLog) -> None:
        name = self.topic_name("dup")
        await log.create_topic(name, 1)
        with pytest.raises(TopicExistsError):
            await log.create_topic(name, 1)
        for bad in ["", "a/b", "a b", "é", "x" * (limits.MAX_TOPIC_NAME_BYTES + 1)]:
            with pytest.raises(InvalidRequestError):
                await log.create_topic(bad, 1)
        for partitions in [0, -1, limits.MAX_PARTITIONS + 1]:
            with pytest.raises(InvalidRequestError):
                await log.create_topic(self.topic_name("parts"), partitions)
        with pytest.raises(TopicNotFoundError):
            log.topic(self.topic_name("missing"))
        with pytest.raises(TopicNotFoundError):
            await log.append(self.topic_name("missing"), 0, [Message(b"x")])

    # ----------------------------------------------------------------------------------- append/read

    async def test_append_returns_dense_positions(self, log: EventLog) -> None:
        name = self.topic_name("dense")
        await log.create_topic(name, 2)
        first = await log.append(name, 0, [Message(payload(i)) for i in range(3)])
        second = await log.append(name, 0, [Message(payload(3))])
        other = await log.append(name, 1, [Message(payload(9))])
        assert (first.base_offset, first.count, second.base_offset) == (0, 3, 3)
        assert [p.offset for p in first.positions] == [0, 1, 2]
        assert (other.partition, other.base_offset) == (1, 0)
        assert second.timestamp_ms >= first.timestamp_ms > 0
        assert await log.end_offsets(name) == [4, 1]

    async def test_records_read_back_byte_identical(self, log: EventLog) -> None:
        name = self.topic_name("bytes")
        await log.create_topic(name, 1)
        messages = [
            Message(b"", None, ()),
            Message(b"\x00\xff" * 1000, b"", ()),
            Message(b"v", b"key\x00", (("content-type", b"json"), ("v", b"1"), ("e", b""))),
            Message(payload(7, 70_000), b"k" * limits.MAX_KEY_BYTES, ()),
        ]
        result = await log.append(name, 0, messages)
        records = await log.read(name, 0, 0, max_records=10)
        assert [(r.value, r.key, r.headers) for r in records] == [(m.value, m.key, m.headers) for m in messages]
        assert [r.offset for r in records] == [0, 1, 2, 3]
        assert {r.timestamp_ms for r in records} == {result.timestamp_ms}
        assert {r.partition for r in records} == {0}

    async def test_read_from_any_offset_and_limits(self, log: EventLog) -> None:
        name = self.topic_name("offsets")
        await log.create_topic(name, 1)
        for start in range(0, 250, 50):
            await log.append(name, 0, [Message(payload(i)) for i in range(start, start + 50)])
        for offset in [0, 1, 49, 50, 51, 137, 249]:
            records = await log.read(name, 0, offset, max_records=7)
            assert records, offset
            assert records[0].offset == offset
            assert [r.value for r in records] == [payload(i) for i in range(offset, min(offset + 7, 250))][
                : len(records)
            ]
            assert len(records) <= 7
        assert await log.read(name, 0, 250) == []
        assert await log.read(name, 0, 10_000) == []
        everything = []
        offset = 0
        while batch := await log.read(name, 0, offset, max_records=33):
            everything.extend(batch)
            offset = batch[-1].offset + 1
        assert [r.offset for r in everything] == list(range(250))

    async def test_bad_requests_are_refused(self, log: EventLog) -> None:
        name = self.topic_name("bad")
        await log.create_topic(name, 2)
        with pytest.raises(InvalidRequestError):
            await log.append(name, 2, [Message(b"x")])
        with pytest.raises(InvalidRequestError):
            await log.append(name, -1, [Message(b"x")])
        with pytest.raises(InvalidRequestError):
            await log.append(name, 0, [])
        with pytest.raises(LimitExceededError):
            await log.append(name, 0, [Message(b"x" * (limits.MAX_VALUE_BYTES + 1))])
        with pytest.raises(LimitExceededError):
            await log.append(name, 0, [Message(b"x", b"k" * (limits.MAX_KEY_BYTES + 1))])
        with pytest.raises(LimitExceededError):
            await log.append(name, 0, [Message(b"")] * (limits.MAX_BATCH_RECORDS + 1))
        with pytest.raises(InvalidRequestError):
            await log.read(name, 0, -1)
        with pytest.raises(LimitExceededError):
            await log.read(name, 0, 0, max_records=0)
        assert await log.end_offsets(name) == [0, 0]

    async def test_concurrent_appenders_get_distinct_dense_offsets(self, log: EventLog) -> None:
        name = self.topic_name("concurrent")
        await log.create_topic(name, 1)

        async def appender(writer: int) -> list[tuple[int, bytes]]:
            placed = []
            for seq in range(20):
                value = f"{writer}:{seq}".encode()
                result = await log.append(name, 0, [Message(value)] * (1 + seq % 3))
                placed.extend((result.base_offset + i, value) for i in range(result.count))
            return placed

        placed = [item for group in await asyncio.gather(*(appender(w) for w in range(16))) for item in group]
        offsets = sorted(offset for offset, _ in placed)
        assert offsets == list(range(len(placed)))
        records = []
        while len(records) < len(placed):
            records.extend(await log.read(name, 0, len(records), max_records=1000))
        by_offset = {r.offset: r.value for r in records}
        assert all(by_offset[offset] == value for offset, value in placed)

    async def test_read_waits_for_new_records(self, log: EventLog) -> None:
        name = self.topic_name("tail")
        await log.create_topic(name, 1)
        assert await log.read(name, 0, 0, wait_ms=50) == []

        async def later() -> None:
            await asyncio.sleep(0.05)
            await log.append(name, 0, [Message(b"late")])

        task = asyncio.create_task(later())
        records = await log.read(name, 0, 0, wait_ms=10_000)
        await task
        assert [r.value for r in records] == [b"late"]

    # ----------------------------------------------------------------------------------- branches

    async def test_branch_reads_parent_below_cut_then_its_own(self, log: EventLog) -> None:
        main, branch = self.topic_name("main"), self.topic_name("what-if")
        await log.create_topic(main, 2)
        await log.append(main, 0, [Message(payload(i)) for i in range(10)])
        await log.append(main, 1, [Message(payload(100 + i)) for i in range(4)])
        info = await log.create_branch(branch, main, [6, 4])
        assert (info.parent, info.fork_cut, info.partitions) == (main, (6, 4), 2)
        assert await log.end_offsets(branch) == [6, 4]
        own = await log.append(branch, 0, [Message(b"b0"), Message(b"b1")])
        assert own.base_offset == 6
        await log.append(main, 0, [Message(b"main-only")])
        values = await self._read_all(log, branch, 0)
        assert values == [payload(i) for i in range(6)] + [b"b0", b"b1"]
        assert await self._read_all(log, main, 0) == [payload(i) for i in range(10)] + [b"main-only"]
        assert await log.end_offsets(branch) == [8, 4]
        assert await log.end_offsets(main) == [11, 4]

    async def test_branch_of_branch(self, log: EventLog) -> None:
        main, first, second = self.topic_name("root"), self.topic_name("b1"), self.topic_name("b2")
        await log.create_topic(main, 1)
        await log.append(main, 0, [Message(b"m0"), Message(b"m1"), Message(b"m2")])
        await log.create_branch(first, main, [2])
        await log.append(first, 0, [Message(b"f2"), Message(b"f3")])
        await log.create_branch(second, first, [3])
        await log.append(second, 0, [Message(b"s3")])
        assert await self._read_all(log, second, 0) == [b"m0", b"m1", b"f2", b"s3"]
        assert await self._read_all(log, first, 0) == [b"m0", b"m1", b"f2", b"f3"]
        records = await log.read(second, 0, 2, max_records=10)
        assert [(r.offset, r.value) for r in records][:1] == [(2, b"f2")]
        with pytest.raises(TopicInUseError):
            await log.delete_topic(first)
        await log.delete_topic(second)
        await log.delete_topic(first)
        assert self.topic_name("b1") not in [t.name for t in log.topics()]

    async def test_branch_cut_is_checked(self, log: EventLog) -> None:
        main = self.topic_name("cutcheck")
        await log.create_topic(main, 2)
        await log.append(main, 0, [Message(b"x")])
        with pytest.raises(InvalidRequestError):
            await log.create_branch(self.topic_name("c1"), main, [2, 0])
        with pytest.raises(InvalidRequestError):
            await log.create_branch(self.topic_name("c2"), main, [0])
        with pytest.raises(InvalidRequestError):
            await log.create_branch(self.topic_name("c3"), main, [-1, 0])
        with pytest.raises(TopicNotFoundError):
            await log.create_branch(self.topic_name("c4"), self.topic_name("nothing"), [0])
        empty = await log.create_branch(self.topic_name("c5"), main, [0, 0])
        assert empty.fork_cut == (0, 0)

    async def test_closed_log_refuses(self) -> None:
        log = await self.open_log()
        name = self.topic_name("closing")
        await log.create_topic(name, 1)
        await log.close()
        await log.close()
        with pytest.raises(LogClosedError):
            await log.append(name, 0, [Message(b"x")])
        with pytest.raises(LogClosedError):
            await log.read(name, 0, 0)

    @staticmethod
    async def _read_all(log: EventLog, topic: str, partition: int) -> list[bytes]:
        values: list[bytes] = []
        offset = 0
        while batch := await log.read(topic, partition, offset, max_records=1000):
            values.extend(r.value for r in batch)
            offset = batch[-1].offset + 1
        return values
