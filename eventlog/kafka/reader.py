"""Readers of one Kafka partition each, pooled and reused where the last read ended.

A reader is an `AIOKafkaConsumer` assigned one partition by hand (no group, no commits). Its fetcher
prefetches ahead of the position, so a read that continues where the previous one ended is served
from memory or from a fetch already in flight; a read elsewhere seeks, which drops the prefetch.
Readers are taken from the pool for one read at a time, so concurrent reads never share one.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any

import aiokafka.errors as kafka_errors
from aiokafka import AIOKafkaConsumer, TopicPartition

from eventlog.errors import InvalidRequestError, LogClosedError
from eventlog.kafka.common import ClientOptions, to_log_error
from eventlog.records import Record

__all__ = ["OffsetOutOfRange", "PartitionReader", "ReaderPool", "new_consumer", "topic_partition"]


class OffsetOutOfRange(Exception):
    """The broker holds no offset there (beyond the end of the partition)."""


def new_consumer(options: ClientOptions, suffix: str) -> Any:
    """An unstarted consumer with no group: positions are ours, nothing is committed."""
    return AIOKafkaConsumer(
        bootstrap_servers=options.bootstrap_servers,
        client_id=f"{options.client_id}-{suffix}",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
        isolation_level="read_uncommitted",  # no transactions write these topics
        fetch_max_wait_ms=options.fetch_max_wait_ms,
        fetch_min_bytes=1,
        max_partition_fetch_bytes=options.max_partition_fetch_bytes,
        request_timeout_ms=options.request_timeout_ms,
        check_crcs=True,
    )


class PartitionReader:
    """One consumer assigned one partition; `position` is where the next read continues."""

    def __init__(self, tp: Any, options: ClientOptions) -> None:
        self.tp = tp
        self._options = options
        self._consumer: Any = None
        self.position: int | None = None
        self.discard = False

    @property
    def topic(self) -> str:
        return str(self.tp.topic)

    def highwater(self) -> int:
        """The partition's end as the last fetch response told it (0 before any)."""
        if self._consumer is None:
            return 0
        value = self._consumer.highwater(self.tp)
        return int(value) if value is not None else 0

    async def move_to(self, offset: int) -> None:
        """Make `offset` the position of the next fetch (a seek only when it is elsewhere)."""
        if self._consumer is None:
            consumer = new_consumer(self._options, "reader")
            try:
                await consumer.start()
            except BaseException as error:
                await consumer.stop()
                raise to_log_error(error, f"start a reader of {self.tp.topic}/{self.tp.partition}") from error
            # assign and seek with no await between: the fetcher never sees a partition without a position.
            consumer.assign([self.tp])
            consumer.seek(self.tp, offset)
            self._consumer = consumer
        elif self.position != offset:
            self._consumer.seek(self.tp, offset)
        self.position = offset

    async def fetch(self, timeout_ms: int, max_records: int) -> list[Record]:
        """Records from the position on: those prefetched, else wait up to `timeout_ms` for a fetch."""
        if self._consumer is None or self.position is None:
            raise InvalidRequestError("kafka: fetch from a reader not moved to an offset")
        offset = self.position
        try:
            batches = await self._consumer.getmany(self.tp, timeout_ms=timeout_ms, max_records=max_records)
        except kafka_errors.OffsetOutOfRangeError:
            self.position = None
            raise OffsetOutOfRange(offset) from None
        except kafka_errors.ConsumerStoppedError:
            raise LogClosedError("the log is closed") from None
        except Exception as error:
            self.position = None
            raise to_log_error(error, f"read {self.tp.topic}/{self.tp.partition} at {offset}") from error
        found = batches.get(self.tp)
        if not found:
            return []
        partition = int(self.tp.partition)
        records = [
            Record(
                partition,
                item.offset,
                item.timestamp,
                item.key,
                item.value if item.value is not None else b"",
                tuple((name, value if value is not None else b"") for name, value in item.headers),
            )
            for item in found
            if item.offset >= offset
        ]
        self.position = int(found[-1].offset) + 1
        return records

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        self.position = None
        if consumer is not None:
            await consumer.stop()


class ReaderPool:
    """Idle readers by recency; a read takes one (preferably positioned where it starts) and gives it back."""

    def __init__(self, options: ClientOptions, max_idle: int) -> None:
        self._options = options
        self._max_idle = max_idle
        self._idle: OrderedDict[int, PartitionReader] = OrderedDict()
        self._busy: set[PartitionReader] = set()
        self._closed = False

    def acquire(self, tp: Any, offset: int) -> PartitionReader:
        """A reader of `tp` for one read: one idle at `offset`, else any idle of `tp`, else a new one."""
        if self._closed:
            raise LogClosedError("the log is closed")
        chosen: PartitionReader | None = None
        for reader in reversed(self._idle.values()):
            if reader.tp == tp:
                if reader.position == offset:
                    chosen = reader
                    break
                if chosen is None:
                    chosen = reader
        if chosen is None:
            chosen = PartitionReader(tp, self._options)
        else:
            del self._idle[id(chosen)]
        self._busy.add(chosen)
        return chosen

    async def release(self, reader: PartitionReader) -> None:
        """Give a reader back after a read; the least recently used idle readers beyond the cap close."""
        self._busy.discard(reader)
        if self._closed or reader.discard or reader.position is None:
            await reader.close()
            return
        self._idle[id(reader)] = reader
        while len(self._idle) > self._max_idle:
            _, oldest = self._idle.popitem(last=False)
            await oldest.close()

    async def drop_topic(self, kafka_topic: str) -> None:
        """Close the readers of a deleted topic (busy ones when they come back)."""
        for key, reader in list(self._idle.items()):
            if reader.topic == kafka_topic:
                del self._idle[key]
                await reader.close()
        for reader in self._busy:
            if reader.topic == kafka_topic:
                reader.discard = True

    async def close(self) -> None:
        self._closed = True
        readers = [*self._idle.values(), *self._busy]
        self._idle.clear()
        for reader in readers:
            with contextlib.suppress(Exception):
                await reader.close()


def topic_partition(topic: str, partition: int) -> Any:
    """aiokafka's TopicPartition (a named tuple: hashable, comparable)."""
    return TopicPartition(topic, partition)
