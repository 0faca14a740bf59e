"""`scan` over real logs (memory and embedded files): ranges, batches, branches, the log's end, bad input."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventlog import limits
from eventlog.base import EventLog
from eventlog.errors import InvalidRequestError, LimitExceededError, LogError
from eventlog.file import FileLog
from eventlog.memory import MemoryLog
from eventlog.records import Message, Record
from eventlog.scan import scan

pytestmark = pytest.mark.anyio

RECORDS = 25


class CountingLog(MemoryLog):
    """The memory log, noting what each read asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, int, int, int]] = []

    async def read(
        self, topic: str, partition: int, offset: int, *, max_records: int = 1000, wait_ms: int = 0
    ) -> list[Record]:
        self.reads.append((topic, partition, offset, max_records))
        return await super().read(topic, partition, offset, max_records=max_records, wait_ms=wait_ms)


class StaleLog(MemoryLog):
    """A log that breaks the contract: every read answers from offset 0, whatever was asked."""

    async def read(
        self, topic: str, partition: int, offset: int, *, max_records: int = 1000, wait_ms: int = 0
    ) -> list[Record]:
        return await super().read(topic, partition, 0, max_records=max_records, wait_ms=wait_ms)


@pytest.fixture(params=["memory", "file"])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    opened: EventLog = MemoryLog() if request.param == "memory" else await FileLog.open(tmp_path / "data")
    await opened.create_topic("t", partitions=2)
    await opened.append("t", 0, [Message(f"p0-{index}".encode()) for index in range(RECORDS)])
    await opened.append("t", 1, [Message(b"p1-0"), Message(b"p1-1")])
    try:
        yield opened
    finally:
        await opened.close()


async def collect(records: AsyncIterator[Record]) -> list[Record]:
    return [record async for record in records]


async def test_a_range_answers_exactly_its_offsets_in_order(log: EventLog) -> None:
    found = await collect(scan(log, "t", 0, 3, 11, batch_records=4))
    assert [record.offset for record in found] == list(range(3, 11))
    assert [record.value for record in found] == [f"p0-{index}".encode() for index in range(3, 11)]
    assert {record.partition for record in found} == {0}


async def test_the_whole_partition_whatever_the_batch_size(log: EventLog) -> None:
    for batch_records in (1, 2, 7, RECORDS, limits.MAX_READ_RECORDS):
        found = await collect(scan(log, "t", 0, 0, RECORDS, batch_records=batch_records))
        assert [record.offset for record in found] == list(range(RECORDS)), batch_records


async def test_no_stop_and_a_stop_past_the_end_both_end_at_the_end(log: EventLog) -> None:
    assert [record.offset for record in await collect(scan(log, "t", 0, 20, None, batch_records=2))] == [
        20,
        21,
        22,
        23,
        24,
    ]
    assert [record.offset for record in await collect(scan(log, "t", 1, 0, 1_000))] == [0, 1]
    assert await collect(scan(log, "t", 1, 2, None)) == []
    assert await collect(scan(log, "t", 1, 50, 60)) == []


async def test_an_empty_range_reads_nothing() -> None:
    log = CountingLog()
    await log.create_topic("t", partitions=1)
    await log.append("t", 0, [Message(b"a"), Message(b"b")])
    assert await collect(scan(log, "t", 0, 1, 1)) == []
    assert log.reads == []


async def test_reads_ask_for_a_batch_at_most_and_never_past_stop() -> None:
    log = CountingLog()
    await log.create_topic("t", partitions=1)
    await log.append("t", 0, [Message(str(index).encode()) for index in range(10)])
    found = await collect(scan(log, "t", 0, 1, 9, batch_records=3))
    assert [record.offset for record in found] == list(range(1, 9))
    assert log.reads == [("t", 0, 1, 3), ("t", 0, 4, 3), ("t", 0, 7, 2)]


async def test_a_branch_reads_its_parent_below_the_fork_and_its_own_records_above(log: EventLog) -> None:
    await log.create_branch("b", "t", [10, 2])
    await log.append("b", 0, [Message(b"own-0"), Message(b"own-1")])
    found = await collect(scan(log, "b", 0, 6, None, batch_records=3))
    assert [record.offset for record in found] == list(range(6, 12))
    assert [record.value for record in found] == [f"p0-{index}".encode() for index in range(6, 10)] + [
        b"own-0",
        b"own-1",
    ]


async def test_leaving_early_and_closing_reads_no_further() -> None:
    log = CountingLog()
    await log.create_topic("t", partitions=1)
    await log.append("t", 0, [Message(str(index).encode()) for index in range(10)])
    async with contextlib.aclosing(scan(log, "t", 0, 0, None, batch_records=4)) as records:
        async for record in records:
            if record.offset == 2:
                break
    assert log.reads == [("t", 0, 0, 4)]


async def test_bad_bounds_and_batch_sizes_are_refused(log: EventLog) -> None:
    with pytest.raises(InvalidRequestError, match="stop 2 is below start 5"):
        await collect(scan(log, "t", 0, 5, 2))
    for batch_records in (0, limits.MAX_READ_RECORDS + 1):
        with pytest.raises(LimitExceededError, match="batch_records"):
            await collect(scan(log, "t", 0, 0, None, batch_records=batch_records))
    with pytest.raises(InvalidRequestError):
        await collect(scan(log, "t", 0, -1, None))


async def test_a_log_answering_offsets_below_the_request_is_refused() -> None:
    log = StaleLog()
    await log.create_topic("t", partitions=1)
    await log.append("t", 0, [Message(str(index).encode()) for index in range(6)])
    records = scan(log, "t", 0, 0, None, batch_records=4)
    assert [(await anext(records)).offset for _ in range(4)] == [0, 1, 2, 3]
    with pytest.raises(LogError, match="read at 4 answered offset 0"):
        await anext(records)
