"""Appends to one Kafka partition: each append is one atomic record batch, concurrent appends group-committed.

Kafka writes a record batch atomically, so an append must never be split across batches. A partition
has one *open* batch: appends join it whole (all their records, or none) for as long as it stays open,
that is until aiokafka's sender drains it into a produce request, or until it is full. aiokafka keeps
one produce request in flight per broker, so every append arriving while a request is on its way joins
the batch that goes in the next one: 16 concurrent appenders cost one produce round trip, not 16, and
an append waits at most for the request in flight plus its own (the raw producer's own batching).

"Drained" must be exact: with idempotence the sender gives a batch its sequence numbers from its record
count when it takes the batch from the queue, before it serializes it, so a record added after that
would break the sequence (OutOfOrderSequenceNumber). aiokafka's `BatchBuilder` has no public drain
hook; `_close_when_drained` closes our builder at the call that takes the record count
(`_set_producer_state`, aiokafka 0.14), and without that hook a batch stops taking appends once queued.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventlog.errors import LimitExceededError, LogError
from eventlog.kafka.common import to_log_error
from eventlog.records import AppendResult, Message

__all__ = ["PartitionWriter", "encoded_size_bound"]

#: Kafka's record batch header (v2).
BATCH_OVERHEAD_BYTES = 61
#: Most bytes a record's framing takes (length, attributes, deltas, key/value lengths, header count).
RECORD_OVERHEAD_BYTES = 40
#: Most bytes a header's framing takes (two varint lengths).
HEADER_OVERHEAD_BYTES = 10


def encoded_size_bound(messages: Sequence[Message]) -> int:
    """An upper bound of the bytes `messages` take inside a Kafka record batch (uncompressed)."""
    total = 0
    for value, key, headers in messages:
        total += RECORD_OVERHEAD_BYTES + len(value) + (len(key) if key is not None else 0)
        for name, header_value in headers:
            total += HEADER_OVERHEAD_BYTES + len(name.encode()) + len(header_value)
    return total


@dataclass(slots=True)
class _Member:
    """One append inside a batch: where its records start, how many, and who waits for them."""

    start: int
    count: int
    future: asyncio.Future[AppendResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(slots=True)
class _Batch:
    """A record batch being filled: open to new appends until aiokafka drains it or it is full."""

    builder: Any
    members: list[_Member] = field(default_factory=list)
    bound: int = BATCH_OVERHEAD_BYTES
    #: Resolved once every member has its result (delivered or failed).
    settled: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    #: Whether appends may still join once the batch is in aiokafka's queue (until it is drained).
    open_when_queued: bool = False


class PartitionWriter:
    """Group-commits appends to one partition of one Kafka topic through a shared producer."""

    def __init__(self, producer: Any, kafka_topic: str, partition: int, *, max_batch_bytes: int) -> None:
        self._producer = producer
        self._topic = kafka_topic
        self._partition = partition
        self._max_batch_bytes = max_batch_bytes
        self._open: _Batch | None = None
        self._enqueued: asyncio.Future[None] | None = None  # set once the newest batch is in aiokafka's queue
        self._unsettled: set[asyncio.Future[None]] = set()  # `settled` of every batch not yet settled
        self._senders: set[asyncio.Task[None]] = set()

    @property
    def task(self) -> asyncio.Future[Any] | None:
        """A future of every unfinished append of this partition (awaited on close), or None when idle."""
        if not self._unsettled:
            return None
        return asyncio.gather(*self._unsettled, return_exceptions=True)

    async def append(self, messages: list[Message]) -> AppendResult:
        """Append `messages` as part of one batch; offsets count from the partition's 0."""
        bound = encoded_size_bound(messages)
        member = self._join(messages, bound)
        if member is None:
            member = self._start(messages, bound)
        return await member.future

    def _join(self, messages: list[Message], bound: int) -> _Member | None:
        """Add `messages` to the open batch if it is still open and they all fit; else None (nothing added)."""
        batch = self._open
        if batch is None or batch.builder.closed() or batch.bound + bound > self._max_batch_bytes:
            return None
        start = batch.builder.record_count()
        for index, (value, key, headers) in enumerate(messages):
            if batch.builder.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                # Cannot happen by the size bound, and the batch is not drained while this loop runs.
                if index != 0:
                    raise LogError("kafka: an append was split across record batches")
                return None
        batch.bound += bound
        member = _Member(start, len(messages))
        batch.members.append(member)
        return member

    def _start(self, messages: list[Message], bound: int) -> _Member:
        """Open a new batch holding `messages` and queue it behind the previous one."""
        builder = self._producer.create_batch()
        batch = _Batch(builder, bound=BATCH_OVERHEAD_BYTES + bound)
        batch.open_when_queued = _close_when_drained(builder)
        member = _Member(0, len(messages))
        batch.members.append(member)
        for value, key, headers in messages:
            if builder.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                member.future.set_exception(_too_large(messages, bound))
                return member
        if builder.size() > self._max_batch_bytes:
            member.future.set_exception(_too_large(messages, bound))
            return member
        previous = self._enqueued
        self._enqueued = asyncio.get_running_loop().create_future()
        self._open = batch
        self._unsettled.add(batch.settled)
        batch.settled.add_done_callback(self._unsettled.discard)
        sender = asyncio.get_running_loop().create_task(self._send(batch, previous, self._enqueued))
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)
        return member

    async def _send(self, batch: _Batch, previous: asyncio.Future[None] | None, enqueued: asyncio.Future[None]) -> None:
        """Hand the batch to aiokafka once the previous batch is queued (keeps the partition's order)."""
        try:
            if previous is not None:
                await asyncio.shield(previous)
            delivery = await self._producer.send_batch(batch.builder, self._topic, partition=self._partition)
            if not batch.open_when_queued:
                batch.builder.close()
        except BaseException as error:
            batch.builder.close()
            if self._open is batch:
                self._open = None
            _fail(batch, to_log_error(error, f"append to {self._topic}/{self._partition}"))
            if not isinstance(error, Exception):
                raise
            return
        finally:
            if not enqueued.done():
                enqueued.set_result(None)
        delivery.add_done_callback(functools.partial(self._delivered, batch))

    def _delivered(self, batch: _Batch, delivery: asyncio.Future[Any]) -> None:
        if self._open is batch:
            self._open = None
        error = LogError("the append was cancelled") if delivery.cancelled() else delivery.exception()
        if error is not None:
            _fail(batch, to_log_error(error, f"append to {self._topic}/{self._partition}"))
            return
        metadata = delivery.result()
        offset = int(metadata.offset)
        timestamp_ms = int(metadata.timestamp)
        if timestamp_ms < 0:  # the topic stamps CreateTime: the producer's clock is what was written
            timestamp_ms = time.time_ns() // 1_000_000
        for member in batch.members:
            if not member.future.done():
                result = AppendResult(self._partition, offset + member.start, member.count, timestamp_ms)
                member.future.set_result(result)
        batch.settled.set_result(None)


def _close_when_drained(builder: Any) -> bool:
    """Make `builder` close itself when the sender drains it (see the module docstring); False if it cannot."""
    take_count = getattr(builder, "_set_producer_state", None)
    if take_count is None or not callable(take_count):
        return False

    def drained(*args: Any, **kwargs: Any) -> Any:
        builder.close()  # the record count is taken now: nothing may join any more
        return take_count(*args, **kwargs)

    builder._set_producer_state = drained
    return True


def _too_large(messages: Sequence[Message], bound: int) -> LimitExceededError:
    return LimitExceededError(
        f"batch of {len(messages)} records does not fit one Kafka record batch "
        f"(about {bound} bytes); an append is never split"
    )


def _fail(batch: _Batch, error: LogError) -> None:
    for member in batch.members:
        if not member.future.done():
            member.future.set_exception(error)
    if not batch.settled.done():
        batch.settled.set_result(None)
