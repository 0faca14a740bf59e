"""Appends to one Kafka partition: each append is one atomic record batch, concurrent appends group-committed.

Kafka writes a record batch atomically, so an append must never be split across batches. While a
batch of a partition is on its way, later appends to that partition wait; the next round packs the
waiting appends whole into as few batches as fit (`merge_bytes` each), so that 16 concurrent appenders
cost one produce round trip, not 16 (aiokafka keeps one produce request in flight per broker).
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
#: Appends merged into one batch until their bound reaches this (a larger append goes alone).
MERGE_BYTES_DEFAULT = 1024 * 1024
#: Batches of one partition outstanding at once (one sent, one queued behind it).
MAX_IN_FLIGHT_DEFAULT = 2


def encoded_size_bound(messages: Sequence[Message]) -> int:
    """An upper bound of the bytes `messages` take inside a Kafka record batch (uncompressed)."""
    total = 0
    for value, key, headers in messages:
        total += RECORD_OVERHEAD_BYTES + len(value) + (len(key) if key is not None else 0)
        for name, header_value in headers:
            total += HEADER_OVERHEAD_BYTES + len(name.encode()) + len(header_value)
    return total


@dataclass(slots=True)
class _Pending:
    messages: list[Message]
    size: int
    future: asyncio.Future[AppendResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class PartitionWriter:
    """Group-commits appends to one partition of one Kafka topic through a shared producer.

    Up to `max_in_flight` batches of the partition are outstanding: one on its way to the broker and
    the next queued behind it, so the broker never waits for this side between two batches.
    """

    def __init__(
        self,
        producer: Any,
        kafka_topic: str,
        partition: int,
        *,
        max_batch_bytes: int,
        merge_bytes: int = MERGE_BYTES_DEFAULT,
        max_in_flight: int = MAX_IN_FLIGHT_DEFAULT,
    ) -> None:
        self._producer = producer
        self._topic = kafka_topic
        self._partition = partition
        self._max_batch_bytes = max_batch_bytes
        self._merge_bytes = min(merge_bytes, max_batch_bytes - BATCH_OVERHEAD_BYTES)
        self._max_in_flight = max(1, max_in_flight)
        self._pending: list[_Pending] = []
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._wakeup: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task sending this partition's batches while any append is unfinished (awaited on close)."""
        return self._task

    async def append(self, messages: list[Message]) -> AppendResult:
        """Append `messages` as one batch; offsets count from the partition's 0."""
        pending = _Pending(messages, encoded_size_bound(messages))
        self._pending.append(pending)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        return await pending.future

    async def _run(self) -> None:
        waiting: list[_Pending] = []
        loop = asyncio.get_running_loop()
        try:
            while self._pending or self._in_flight:
                if not self._pending or len(self._in_flight) >= self._max_in_flight:
                    self._wakeup = loop.create_future()
                    await asyncio.wait([self._wakeup, *self._in_flight], return_when=asyncio.FIRST_COMPLETED)
                    self._wakeup = None
                    continue
                # Appenders cancelled before their round are left out: nothing of theirs is written.
                waiting, self._pending = [p for p in self._pending if not p.future.done()], []
                await self._send_round(waiting)
                waiting = []
        except BaseException as error:  # never leave an appender waiting forever
            for pending in [*waiting, *self._pending]:
                _fail(pending, to_log_error(error, f"append to {self._topic}/{self._partition}"))
            self._pending = []
            if not isinstance(error, Exception):
                raise
        finally:
            self._task = None

    async def _send_round(self, waiting: list[_Pending]) -> None:
        groups: list[list[_Pending]] = []
        bound = 0
        for pending in waiting:
            if groups and bound + pending.size <= self._merge_bytes:
                groups[-1].append(pending)
                bound += pending.size
            else:
                groups.append([pending])
                bound = pending.size
        for group in groups:
            builder = self._build(group)
            if builder is None:
                continue
            try:
                # Returns once the batch is queued, i.e. once the previous one of this partition is sent.
                delivery = await self._producer.send_batch(builder, self._topic, partition=self._partition)
            except Exception as error:
                for pending in group:
                    _fail(pending, to_log_error(error, f"append to {self._topic}/{self._partition}"))
                continue
            self._in_flight.add(delivery)
            delivery.add_done_callback(functools.partial(self._delivered, group))

    def _delivered(self, group: list[_Pending], delivery: asyncio.Future[Any]) -> None:
        self._in_flight.discard(delivery)
        error = LogError("the append was cancelled") if delivery.cancelled() else delivery.exception()
        if error is not None:
            for pending in group:
                _fail(pending, to_log_error(error, f"append to {self._topic}/{self._partition}"))
            return
        metadata = delivery.result()
        offset = int(metadata.offset)
        timestamp_ms = int(metadata.timestamp)
        if timestamp_ms < 0:  # the topic stamps CreateTime: the producer's clock is what was written
            timestamp_ms = time.time_ns() // 1_000_000
        for pending in group:
            count = len(pending.messages)
            if not pending.future.done():
                pending.future.set_result(AppendResult(self._partition, offset, count, timestamp_ms))
            offset += count

    def _build(self, group: list[_Pending]) -> Any:
        """A record batch holding every message of `group`, or None after failing an append too large."""
        builder = self._producer.create_batch()
        for pending in group:
            for value, key, headers in pending.messages:
                if builder.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                    # Only a lone append can overflow: merged groups stay below `merge_bytes` by bound.
                    _fail(pending, _too_large(pending))
                    return None
        if builder.size() > self._max_batch_bytes:
            for pending in group:
                _fail(pending, _too_large(pending))
            return None
        return builder


def _too_large(pending: _Pending) -> LimitExceededError:
    return LimitExceededError(
        f"batch of {len(pending.messages)} records does not fit one Kafka record batch "
        f"(about {pending.size} bytes); an append is never split"
    )


def _fail(pending: _Pending, error: LogError) -> None:
    if not pending.future.done():
        pending.future.set_exception(error)
