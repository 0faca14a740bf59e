"""`scan`: the one way to read a range of one partition, in bounded batches, in offset order."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Final

from eventlog import limits
from eventlog.base import EventLog
from eventlog.errors import InvalidRequestError, LimitExceededError, LogError
from eventlog.records import Record

__all__ = ["SCAN_BATCH_RECORDS", "scan"]

#: Records one read of a scan asks for when the caller names no batch size.
SCAN_BATCH_RECORDS: Final = 1_000


async def scan(
    log: EventLog,
    topic: str,
    partition: int,
    start: int,
    stop: int | None,
    *,
    batch_records: int = SCAN_BATCH_RECORDS,
) -> AsyncGenerator[Record, None]:
    """The records of `topic`/`partition` with offsets in [`start`, `stop`), in offset order.

    `stop=None` reads up to the partition's end as it is when each batch is read; a `stop` past the
    end ends the scan at the end (it never waits for records). Each read asks for at most
    `batch_records` records, and never for records at or past `stop`. A read that answers an offset
    below the one asked for (or not increasing) raises `LogError`: the log broke its contract.
    """
    if not 1 <= batch_records <= limits.MAX_READ_RECORDS:
        raise LimitExceededError(f"batch_records must be within 1..{limits.MAX_READ_RECORDS}")
    if stop is not None and stop < start:
        raise InvalidRequestError(f"scan of {topic!r} partition {partition}: stop {stop} is below start {start}")
    offset = start
    while stop is None or offset < stop:
        wanted = batch_records if stop is None else min(batch_records, stop - offset)
        batch = await log.read(topic, partition, offset, max_records=wanted)
        if not batch:
            return
        for record in batch:
            if record.offset < offset:
                raise LogError(f"{topic!r} partition {partition}: read at {offset} answered offset {record.offset}")
            if stop is not None and record.offset >= stop:
                return
            yield record
            offset = record.offset + 1
