"""The Kafka backend against a real Apache Kafka broker: the contract, plus what only Kafka can show."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from eventlog import limits
from eventlog.base import EventLog
from eventlog.errors import (
    InvalidRequestError,
    LimitExceededError,
    LogClosedError,
    LogError,
    TopicExistsError,
)
from eventlog.kafka import KafkaLog
from eventlog.partitioner import partition_for
from eventlog.records import Message
from eventlog.url import open_log
from infra.kafka.launcher import free_ports
from tests.eventlog.log_contract import EventLogContract, payload
from tests.kafka_broker import KafkaHandle

pytestmark = [pytest.mark.anyio, pytest.mark.kafka]

_RUN = uuid.uuid4().hex[:6]
_COUNTER = itertools.count()


def unique(base: str) -> str:
    """A topic name no other test of any session on this broker uses."""
    return f"t{_RUN}-{next(_COUNTER)}-{base}"


class TestKafkaLog(EventLogContract):
    @pytest.fixture(autouse=True)
    def _broker(self, kafka_cluster: KafkaHandle) -> None:
        self.servers = kafka_cluster.bootstrap_servers
        self.prefix = unique("")

    async def open_log(self) -> EventLog:
        return await KafkaLog.open(self.servers)

    def topic_name(self, base: str) -> str:
        return self.prefix + base


@pytest.fixture
async def kafka_log(kafka_cluster: KafkaHandle) -> AsyncIterator[KafkaLog]:
    log = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    try:
        yield log
    finally:
        await log.close()


async def read_all(log: EventLog, topic: str, partition: int) -> list[bytes]:
    values: list[bytes] = []
    while batch := await log.read(topic, partition, len(values), max_records=1000):
        values.extend(r.value for r in batch)
    return values


# ------------------------------------------------------------------------------------------ catalog


async def test_catalog_survives_reopening(kafka_cluster: KafkaHandle) -> None:
    main, branch = unique("main"), unique("branch")
    first = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    await first.create_topic(main, 3)
    await first.append(main, 0, [Message(payload(i)) for i in range(5)])
    await first.append(main, 2, [Message(b"m2")])
    await first.create_branch(branch, main, [3, 0, 1])
    await first.append(branch, 0, [Message(b"own")])
    await first.close()

    second = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    assert second.topic(main).partitions == 3
    info = second.topic(branch)
    assert (info.parent, info.fork_cut, info.partitions) == (main, (3, 0, 1), 3)
    assert await read_all(second, branch, 0) == [payload(i) for i in range(3)] + [b"own"]
    assert await second.end_offsets(branch) == [4, 0, 1]
    await second.delete_topic(branch)
    await second.close()

    third = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    names = {t.name for t in third.topics()}
    assert main in names
    assert branch not in names
    await third.close()


async def test_topics_made_on_one_node_appear_on_another(kafka_cluster: KafkaHandle) -> None:
    a = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    b = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    try:
        name = unique("shared")
        await b.create_topic(name, 2)
        await a.sync_topics()
        assert a.topic(name).partitions == 2
        with pytest.raises(TopicExistsError):
            await a.create_topic(name, 2)
        await a.delete_topic(name)
        await b.sync_topics()
        assert name not in {t.name for t in b.topics()}
    finally:
        await a.close()
        await b.close()


# ------------------------------------------------------------------------------------------ records


async def test_read_waits_for_a_record_another_node_appends(kafka_cluster: KafkaHandle) -> None:
    reader_node = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    writer_node = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    try:
        name = unique("tail")
        await reader_node.create_topic(name, 2)
        await writer_node.sync_topics()
        await writer_node.append(name, 1, [Message(b"before")])
        assert [r.value for r in await reader_node.read(name, 1, 0)] == [b"before"]

        async def later() -> float:
            await asyncio.sleep(0.3)
            await writer_node.append(name, 1, [Message(b"from-the-other-node", b"k")])
            return time.monotonic()

        task = asyncio.create_task(later())
        records = await reader_node.read(name, 1, 1, wait_ms=20_000)
        seen_at = time.monotonic()
        appended_at = await task
        assert [(r.offset, r.value, r.key) for r in records] == [(1, b"from-the-other-node", b"k")]
        assert seen_at - appended_at < 1.0
        # With no wait the reader still sees what the other node appended (it asks the broker).
        await writer_node.append(name, 1, [Message(b"third")])
        assert [r.value for r in await reader_node.read(name, 1, 2)] == [b"third"]
    finally:
        await reader_node.close()
        await writer_node.close()


async def test_timestamps_are_stamped_by_the_broker(kafka_log: KafkaLog, kafka_cluster: KafkaHandle) -> None:
    name = unique("stamps")
    await kafka_log.create_topic(name, 2)
    before = time.time() * 1000
    results = []
    for index in range(6):
        results.append(await kafka_log.append(name, index % 2, [Message(payload(index))] * 3))
        await asyncio.sleep(0.01)
    after = time.time() * 1000
    for partition in (0, 1):
        stamps = [r.timestamp_ms for r in results if r.partition == partition]
        assert stamps == sorted(stamps)
        records = await kafka_log.read(name, partition, 0)
        assert [r.timestamp_ms for r in records] == [s for s in stamps for _ in range(3)]
    assert before - 1000 <= results[0].timestamp_ms <= results[-1].timestamp_ms <= after + 1000
    # A plain Kafka producer asking for an old timestamp gets the broker's time instead (LogAppendTime).
    producer = AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers, acks="all")
    await producer.start()
    try:
        metadata = await producer.send_and_wait(kafka_log.kafka_topic(name), b"old", partition=0, timestamp_ms=1_000)
    finally:
        await producer.stop()
    [record] = await kafka_log.read(name, 0, metadata.offset)
    assert record.value == b"old"
    assert record.timestamp_ms >= results[-1].timestamp_ms > 1_000


async def test_an_append_that_does_not_fit_one_batch_is_refused_whole(kafka_cluster: KafkaHandle) -> None:
    log = await KafkaLog.open(kafka_cluster.bootstrap_servers, max_batch_bytes=64 * 1024)
    try:
        name = unique("limit")
        await log.create_topic(name, 1)
        with pytest.raises(LimitExceededError):
            await log.append(name, 0, [Message(b"x" * 100_000)])
        with pytest.raises(LimitExceededError):
            await log.append(name, 0, [Message(payload(i, 5000)) for i in range(20)])
        with pytest.raises(LimitExceededError):
            await log.append(name, 0, [Message(b"x" * (limits.MAX_VALUE_BYTES + 1))])
        assert await log.end_offsets(name) == [0]
        # A refused append beside concurrent small ones fails alone; theirs are written.
        outcomes = await asyncio.gather(
            log.append(name, 0, [Message(b"a")]),
            log.append(name, 0, [Message(b"y" * 70_000)]),
            log.append(name, 0, [Message(b"b"), Message(b"c")]),
            return_exceptions=True,
        )
        assert isinstance(outcomes[1], LimitExceededError)
        assert sorted(await read_all(log, name, 0)) == [b"a", b"b", b"c"]
        fits = await log.append(name, 0, [Message(payload(i, 5000)) for i in range(10)])
        assert (fits.base_offset, fits.count) == (3, 10)
    finally:
        await log.close()


async def test_the_largest_batch_the_log_allows_round_trips(kafka_log: KafkaLog) -> None:
    name = unique("big")
    await kafka_log.create_topic(name, 1)
    values = [bytes([i]) * limits.MAX_VALUE_BYTES for i in range(limits.MAX_BATCH_BYTES // 2 // limits.MAX_VALUE_BYTES)]
    result = await kafka_log.append(name, 0, [Message(v) for v in values])
    assert result.count == len(values) == 8
    await kafka_log.append(name, 0, [Message(b"after")])
    assert await read_all(kafka_log, name, 0) == [*values, b"after"]


async def test_concurrent_appends_stay_whole_and_in_order(kafka_log: KafkaLog) -> None:
    name = unique("whole")
    await kafka_log.create_topic(name, 2)

    async def appender(writer: int) -> list[tuple[int, int, int]]:
        placed = []
        for seq in range(15):
            size = 1 + (writer + seq) % 5
            result = await kafka_log.append(
                name, writer % 2, [Message(f"{writer}:{seq}:{i}".encode()) for i in range(size)]
            )
            placed.append((result.partition, result.base_offset, size))
        return placed

    placed = [p for group in await asyncio.gather(*(appender(w) for w in range(16))) for p in group]
    for partition in (0, 1):
        values = await read_all(kafka_log, name, partition)
        spans = sorted((offset, size) for p, offset, size in placed if p == partition)
        assert sum(size for _, size in spans) == len(values)
        for offset, size in spans:
            batch = [v.decode().rsplit(":", 1) for v in values[offset : offset + size]]
            assert len({prefix for prefix, _ in batch}) == 1
            assert [int(i) for _, i in batch] == list(range(size))


async def test_read_beyond_the_end_returns_nothing_then_sees_growth(kafka_log: KafkaLog) -> None:
    name = unique("beyond")
    await kafka_log.create_topic(name, 1)
    await kafka_log.append(name, 0, [Message(b"0")])
    started = time.monotonic()
    assert await kafka_log.read(name, 0, 5, wait_ms=200) == []
    assert 0.15 <= time.monotonic() - started < 5
    await kafka_log.append(name, 0, [Message(str(i).encode()) for i in range(1, 8)])
    assert [r.offset for r in await kafka_log.read(name, 0, 5)] == [5, 6, 7]
    assert [r.offset for r in await kafka_log.read(name, 0, 2, max_records=2)] == [2, 3]
    assert [r.offset for r in await kafka_log.read(name, 0, 4, max_records=2)] == [4, 5]


# ------------------------------------------------------------------------------------------ partitioner


def test_partitioner_agrees_with_aiokafka_default_partitioner() -> None:
    rng = random.Random(20_240_601)
    partitioner = DefaultPartitioner()
    for _ in range(1000):
        key = rng.randbytes(rng.choice([0, 1, 2, 3, 4, 5, 7, 8, 16, 36, 64, 255]))
        partitions = rng.choice([1, 2, 3, 8, 12, 64, 1024])
        everything = list(range(partitions))
        assert partition_for(key, partitions) == partitioner(key, everything, everything), (key, partitions)


async def test_keys_land_where_a_plain_kafka_producer_puts_them(
    kafka_log: KafkaLog, kafka_cluster: KafkaHandle
) -> None:
    name = unique("keys")
    await kafka_log.create_topic(name, 8)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_cluster.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for index in range(100):
            key = f"agent-{index}".encode()
            metadata = await producer.send_and_wait(kafka_log.kafka_topic(name), b"v", key=key)
            assert metadata.partition == partition_for(key, 8)
    finally:
        await producer.stop()


# ------------------------------------------------------------------------------------------ setup


async def test_opening_through_a_url_and_refusing_bad_settings(kafka_cluster: KafkaHandle) -> None:
    log = await open_log(f"kafka://{kafka_cluster.bootstrap_servers}")
    assert isinstance(log, KafkaLog)
    assert (log.replication_factor, log.min_insync_replicas) == (1, 1)
    await log.close()
    with pytest.raises(InvalidRequestError):
        await KafkaLog.open(kafka_cluster.bootstrap_servers, replication_factor=2)
    with pytest.raises(InvalidRequestError):
        await KafkaLog.open(kafka_cluster.bootstrap_servers, topic_prefix="bad/prefix")


async def test_names_kafka_refuses_are_invalid_requests(kafka_log: KafkaLog) -> None:
    dotted = unique("a.b")
    await kafka_log.create_topic(dotted, 1)
    with pytest.raises(InvalidRequestError):  # Kafka: '.' and '_' collide in metric names
        await kafka_log.create_topic(dotted.replace(".", "_"), 1)
    with pytest.raises(InvalidRequestError):
        await kafka_log.create_topic("__agentlog_topics", 1)


async def test_close_leaves_no_task_behind(kafka_cluster: KafkaHandle) -> None:
    before = asyncio.all_tasks()
    log = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    name = unique("tasks")
    await log.create_topic(name, 2)
    await log.append(name, 0, [Message(b"x")])
    await log.read(name, 0, 0)
    assert await log.read(name, 1, 0, wait_ms=100) == []
    pending = asyncio.create_task(log.read(name, 1, 0, wait_ms=10_000))
    await asyncio.sleep(0.1)
    await log.close()
    [outcome] = await asyncio.gather(pending, return_exceptions=True)
    assert outcome == [] or isinstance(outcome, LogClosedError)
    await asyncio.sleep(0)
    assert {t for t in asyncio.all_tasks() if not t.done()} - before <= {asyncio.current_task()}


async def test_a_topic_deleted_and_made_again_starts_empty(kafka_log: KafkaLog) -> None:
    name = unique("again")
    await kafka_log.create_topic(name, 1)
    await kafka_log.append(name, 0, [Message(b"old")] * 5)
    assert len(await kafka_log.read(name, 0, 0)) == 5
    await kafka_log.delete_topic(name)
    await kafka_log.create_topic(name, 1)
    assert await kafka_log.end_offsets(name) == [0]
    result = await kafka_log.append(name, 0, [Message(b"new")])
    assert result.base_offset == 0
    assert [r.value for r in await kafka_log.read(name, 0, 0)] == [b"new"]


async def test_an_unreachable_cluster_fails_to_open() -> None:
    [port] = free_ports(1)
    started = time.monotonic()
    with pytest.raises(LogError):
        await KafkaLog.open(f"127.0.0.1:{port}", request_timeout_ms=2000)
    assert time.monotonic() - started < 10
